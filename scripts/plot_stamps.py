"""Rule plot_stamps: the mosaic of an exposure's normalized bright-star stamps."""

import _common

from brightstamps import plots, stampsfile


def main(smk):
    stamps = stampsfile.read_stamps(smk.input[0], memmap=True)  # the mosaic reads only its panels
    plots.plot_stamp_mosaic(stamps, smk.output[0], bad_mask_planes=list(smk.params.bad_mask_planes))


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
