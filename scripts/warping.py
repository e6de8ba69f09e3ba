"""Rule warping: resample the cut-outs onto the common distortion-free grid and rotate them."""

import _common
from brightstamps import exposure, stampsfile, warp


def main(smk):
    e = smk.params.exposure
    wcs, metadata = exposure.read_exposure_header(e["image"], fmt=e["fmt"], hdu=e["hdu"])
    cutouts = stampsfile.read_stamps(smk.input.stamps, memmap=True)
    warped = warp.warp_stamps(cutouts, wcs, metadata, kernel=smk.params.kernel,
                              do_apply_transform=smk.params.do_apply_transform,
                              model_stamp_buffer=smk.params.model_stamp_buffer,
                              nb90_rots=warp.nb90_rotations(smk.params.yaw_deg))
    stampsfile.write_stamps(smk.output[0], warped)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
