"""Stamp extraction: sky-subtracted cut-outs around the matched stars, other sources flagged BAD."""

import logging

import numpy as np
from astropy.table import Table
from scipy import ndimage

from .catalog import cutout_corner
from .masks import ensure_planes
from .stampsfile import BLOCK, StampStream

__all__ = ["extract_stamps", "flag_secondary_footprints"]

log = logging.getLogger(__name__)

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def flag_secondary_footprints(mask, star_pixel, *, detected_bit, bad_bit):
    """OR the BAD bit onto every DETECTED footprint that does not contain the star (in place).

    Footprints are 8-connected regions of the DETECTED bit inside the stamp, as afw's
    ``FootprintSet`` finds them. If no footprint contains *star_pixel* (a faint star, or a centre
    off the stamp) every footprint is flagged, as LSST does. DETECTED stays set.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)`` int32 mask of one stamp, modified in place.
    star_pixel : tuple of int
        ``(x, y)`` of the star's pixel in stamp coordinates (LSST rounds half up).
    detected_bit, bad_bit : int
        Bit values (not indices) of DETECTED and BAD.

    Returns
    -------
    int
        Number of footprints flagged.
    """
    labels, nlab = ndimage.label((mask & detected_bit) != 0, structure=_EIGHT_CONNECTED)
    if nlab == 0:
        return 0
    x, y = star_pixel
    primary = labels[y, x] if (0 <= y < mask.shape[0] and 0 <= x < mask.shape[1]) else 0
    secondary = (labels != 0) & (labels != primary)
    mask[secondary] |= bad_bit
    return nlab - (1 if primary else 0)


def extract_stamps(exposure, stars, sky_model, *, stamp_size, do_remove_detected, block=BLOCK):
    """Cut out step 3's stamps: one ``stamp_size`` box per star, sky removed.

    Each box starts at the LSST corner ``trunc(c - stamp_size/2)``. Where it leaves the
    detector, image is NaN, mask NO_DATA only and variance 0. The sky model is subtracted over
    the part on the detector. With ``do_remove_detected``, DETECTED footprints other than the
    star's own get the BAD bit (:func:`flag_secondary_footprints`).

    Parameters
    ----------
    exposure : brightstamps.exposure.Exposure
    stars : astropy.table.Table
        Matched stars (``gaia_id``, ``ra``, ``dec``, ``g_mag``, ``x``, ``y``).
    sky_model : brightstamps.skymodels.SkyModel
    stamp_size : sequence of int
        Cut-out size (x, y).
    do_remove_detected : bool
        Flag secondary footprints as BAD.
    block : int
        Stamps cut out at a time.

    Returns
    -------
    brightstamps.stampsfile.StampStream
        Cut-outs, made as the stream is consumed (``write_stamps``, or ``.collect()`` for the
        cubes in memory); STARS gains ``cutout_x0``, ``cutout_y0`` (corner in exposure pixels).
    """
    sx, sy = (int(s) for s in stamp_size)
    n = len(stars)
    planes = ensure_planes(exposure.mask_planes, ["NO_DATA", "BAD", "DETECTED"])
    centers = (
        np.column_stack([np.asarray(stars["x"], float), np.asarray(stars["y"], float)])
        if n
        else np.zeros((0, 2))
    )
    corners = cutout_corner(centers, (sx, sy)) if n else np.zeros((0, 2), dtype=np.int64)
    table = Table(stars, copy=True)
    table["cutout_x0"] = corners[:, 0].astype(np.int64)
    table["cutout_y0"] = corners[:, 1].astype(np.int64)
    header = {"STAGE": "cutout", "STAMPSX": sx, "STAMPSY": sy, "SKYMODE": sky_model.mode}
    ny, nx = exposure.shape
    no_data, bad, detected = (1 << planes[p] for p in ("NO_DATA", "BAD", "DETECTED"))

    def blocks():
        flagged = 0
        for start in range(0, n, block):
            m = min(block, n - start)
            image = np.full((m, sy, sx), np.nan, dtype=np.float32)
            mask = np.full((m, sy, sx), no_data, dtype=np.int32)
            variance = np.zeros((m, sy, sx), dtype=np.float32)
            for i, k in enumerate(range(start, start + m)):
                x0, y0 = corners[k]
                # overlap of the box with the detector, in exposure and in stamp coordinates
                ex0, ex1 = max(x0, 0), min(x0 + sx, nx)
                ey0, ey1 = max(y0, 0), min(y0 + sy, ny)
                sl = (slice(ey0 - y0, ey1 - y0), slice(ex0 - x0, ex1 - x0))
                sky = sky_model.evaluate(ey0, ey1, ex0, ex1)
                image[i][sl] = exposure.image[ey0:ey1, ex0:ex1] - sky
                mask[i][sl] = exposure.mask[ey0:ey1, ex0:ex1]
                variance[i][sl] = exposure.variance[ey0:ey1, ex0:ex1]
                if do_remove_detected:
                    # Point2D -> Point2I in afw rounds half up
                    px, py = np.floor(centers[k] + 0.5).astype(int) - (x0, y0)
                    flagged += flag_secondary_footprints(
                        mask[i], (px, py), detected_bit=detected, bad_bit=bad
                    )
            yield image, mask, variance
        log.info("%d cut-outs of %dx%d px; %d secondary footprints flagged BAD", n, sx, sy, flagged)

    return StampStream(table, planes, header, (sy, sx), blocks())
