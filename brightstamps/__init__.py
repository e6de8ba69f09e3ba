"""brightstamps: normalized bright-star postage stamps and extended PSFs, outside the LSST stack.

The package holds all the science; the Snakemake workflow around it only wires files together.
Public API lives in the modules: ``brightstamps.<module>.<name>``.
"""

__version__ = "0.1.0"
