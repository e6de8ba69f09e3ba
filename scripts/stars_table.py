"""Rule stars_table: every star of a band and its outcome (normalization, region, stacked), as TSV."""

import _common

from brightstamps import stack
from brightstamps.files import atomic_output


def main(smk):
    _, psf_stars, _, _ = stack.read_extended_psf(smk.input.psf)
    # paths, read one file at a time: memory stays that of one exposure
    table = stack.band_stars(list(smk.input.stamps), psf_stars).to_pandas()
    with atomic_output(smk.output[0]) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.8g", na_rep="nan")


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
