"""Rule simulate_demo: the simulated demo data set with its truth."""

from pathlib import Path

import _common

from brightstamps import simulate


def main(smk):
    p = smk.params
    outdir = Path(smk.output.catalog).parent
    simulate.simulate_demo(
        outdir,
        seed=p.seed,
        detector_size=p.detector_size,
        n_bright=p.n_bright,
        n_faint=p.n_faint,
        n_field=p.n_field,
    )


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
