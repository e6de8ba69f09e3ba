"""Rule catalog_matching: reference stars brighter than the limit whose stamp overlaps the exposure."""

import _common
from brightstamps import catalog, exposure


def main(smk):
    e = smk.params.exposure
    wcs, metadata = exposure.read_exposure_header(e["image"], fmt=e["fmt"], hdu=e["hdu"])
    ref = catalog.read_catalog(smk.input.catalog, columns=dict(smk.params.columns))
    stars = catalog.match_stars(ref, wcs, metadata, shape=(metadata["NAXIS2"], metadata["NAXIS1"]),
                                mag_limit=smk.params.mag_limit, stamp_size=smk.params.stamp_size,
                                proper_motion=smk.params.proper_motion, source=e["image"])
    catalog.write_stars(smk.output[0], stars)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
