"""Extraction: the star lands at its place in the cut-out, off-detector padding, footprint flags."""

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from numpy.testing import assert_array_equal

from brightstamps.exposure import Exposure
from brightstamps.extract import extract_stamps, flag_secondary_footprints
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.skymodels import MeshSky, NoSky

BIT = {k: 1 << v for k, v in LSST_MASK_PLANES.items()}


def _exposure(ny=200, nx=300):
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = (xx + 1000 * yy).astype(np.float32)
    return Exposure(
        image,
        np.zeros((ny, nx), np.int32),
        np.full((ny, nx), 2.0, np.float32),
        WCS(naxis=2),
        dict(LSST_MASK_PLANES),
        fits.Header(),
        "x.fits",
    )


def _stars(xy):
    xy = np.asarray(xy, float)
    return Table({"gaia_id": np.arange(len(xy), dtype=np.int64), "x": xy[:, 0], "y": xy[:, 1]})


def test_cutout_content_and_off_detector_padding():
    exp = _exposure()
    stamps = extract_stamps(
        exp,
        _stars([[150.4, 100.6], [5.2, 190.0]]),
        NoSky(exp.shape),
        stamp_size=(51, 41),
        do_remove_detected=True,
    ).collect()
    assert stamps.image.shape == (2, 41, 51)
    x0, y0 = stamps.stars["cutout_x0"][0], stamps.stars["cutout_y0"][0]
    assert (x0, y0) == (124, 80)  # trunc(150.4 - 25.5), trunc(100.6 - 20.5)
    assert_array_equal(stamps.image[0], exp.image[80:121, 124:175])
    # second star: box x from -20, y from 169; left 20 columns and top rows off the detector
    x0, y0 = stamps.stars["cutout_x0"][1], stamps.stars["cutout_y0"][1]
    assert (x0, y0) == (-20, 169)
    off = np.zeros((41, 51), bool)
    off[:, :20] = True
    off[31:, :] = True
    assert np.isnan(stamps.image[1][off]).all() and np.isfinite(stamps.image[1][~off]).all()
    assert_array_equal(stamps.mask[1][off], BIT["NO_DATA"])
    assert_array_equal(stamps.variance[1][off], 0.0)


def test_sky_model_is_subtracted_over_the_box():
    exp = _exposure()
    sky = MeshSky(exp.shape, np.full((2, 3), 10.0), source="test")
    stamps = extract_stamps(
        exp, _stars([[150.0, 100.0]]), sky, stamp_size=(21, 21), do_remove_detected=False
    ).collect()
    assert_array_equal(stamps.image[0], exp.image[89:110, 139:160] - 10.0)  # corner trunc(150 - 10.5)


def test_secondary_footprints_flagged_bad_primary_kept():
    mask = np.zeros((30, 30), np.int32)
    mask[10:20, 10:20] = BIT["DETECTED"]  # the star's footprint
    mask[2:4, 25:28] = BIT["DETECTED"]  # a neighbour
    mask[20, 20] = BIT["DETECTED"]  # touches the star's footprint diagonally: same footprint
    n = flag_secondary_footprints(mask, (15, 15), detected_bit=BIT["DETECTED"], bad_bit=BIT["BAD"])
    assert n == 1
    assert (mask[2:4, 25:28] == BIT["DETECTED"] | BIT["BAD"]).all()
    assert (mask[10:20, 10:20] == BIT["DETECTED"]).all() and mask[20, 20] == BIT["DETECTED"]


def test_star_outside_every_footprint_flags_them_all():
    mask = np.zeros((30, 30), np.int32)
    mask[10:20, 10:20] = BIT["DETECTED"]
    mask[2:4, 25:28] = BIT["DETECTED"]
    assert flag_secondary_footprints(mask, (2, 2), detected_bit=BIT["DETECTED"], bad_bit=BIT["BAD"]) == 2
    assert (mask[mask != 0] & BIT["BAD"]).all()


def test_blocks_of_any_size_give_the_same_cutouts():
    exp = _exposure()
    stars = _stars([[150.4, 100.6], [5.2, 190.0], [60.0, 60.0], [100.0, 150.0], [199.0, 1.0]])
    whole = extract_stamps(exp, stars, NoSky(exp.shape), stamp_size=(51, 41), do_remove_detected=True)
    whole = whole.collect()
    for block in (1, 2):
        part = extract_stamps(
            exp, stars, NoSky(exp.shape), stamp_size=(51, 41), do_remove_detected=True, block=block
        ).collect()
        for a, b in ((part.image, whole.image), (part.mask, whole.mask), (part.variance, whole.variance)):
            assert_array_equal(a, b)
