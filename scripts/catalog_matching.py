"""Rule catalog_matching: reference stars brighter than the limit whose stamp overlaps the exposure."""

import _common

from brightstamps import catalog, exposure


def main(smk):
    e = smk.params.exposure
    wcs, metadata = exposure.read_exposure_header(e["image"], fmt=e["fmt"], hdu=e["hdu"])
    shape = (metadata["NAXIS2"], metadata["NAXIS1"])
    cfg = smk.params.catalog
    # the exposure's region: a HATS catalog reads only the partitions that touch it
    region = catalog.catalog_region(wcs, shape, stamp_size=smk.params.stamp_size)
    ref = catalog.read_catalog(
        cfg["path"],
        columns=cfg["columns"],
        region=region,
        mag_system=cfg["mag_system"],
        vega_to_ab=cfg["vega_to_ab"],
    )
    stars = catalog.match_stars(
        ref,
        wcs,
        metadata,
        shape=shape,
        mag_limit=smk.params.mag_limit,
        stamp_size=smk.params.stamp_size,
        proper_motion=smk.params.proper_motion,
        source=e["image"],
    )
    catalog.write_stars(smk.output[0], stars)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
