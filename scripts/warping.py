"""Rule warping: resample the cut-outs onto the common distortion-free grid and rotate them."""

import _common

from brightstamps import exposure, stampsfile, warp


def main(smk):
    e = smk.params.exposure
    wcs, metadata = exposure.read_exposure_header(e["image"], fmt=e["fmt"], hdu=e["hdu"])
    cutouts = stampsfile.read_stamps(smk.input.stamps, memmap=True)
    b = smk.params.boresight
    boresight = warp.boresight_of(
        wcs,
        metadata,
        ra_key=b["ra_key"],
        dec_key=b["dec_key"],
        ra_unit=b["ra_unit"],
        fixed=(b["ra"], b["dec"]) if "ra" in b else None,
        source=e["image"],
    )
    warped = warp.warp_stamps(
        cutouts,
        wcs,
        kernel=smk.params.kernel,
        do_apply_transform=smk.params.do_apply_transform,
        model_stamp_buffer=smk.params.model_stamp_buffer,
        nb90_rots=warp.nb90_rotations(smk.params.yaw_deg),
        orientation=smk.params.orientation,
        boresight=boresight,
        source=e["image"],
    )
    stampsfile.write_stamps(smk.output[0], warped)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
