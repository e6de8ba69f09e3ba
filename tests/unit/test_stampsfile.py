"""The stamps file: exact round trip, and an empty collection is a valid file."""

import numpy as np
from astropy.table import Table
from numpy.testing import assert_array_equal

from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.stampsfile import Stamps, read_stamps, write_stamps


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(5)
    img = rng.normal(size=(3, 11, 9)).astype(np.float32)
    img[1, 2, 3] = np.nan
    msk = rng.integers(0, 512, size=(3, 11, 9)).astype(np.int32)
    var = rng.uniform(size=(3, 11, 9)).astype(np.float32)
    var[0, 0, 0] = np.inf
    stars = Table({"gaia_id": np.array([2**62, 5, -1], np.int64), "g_mag": [1.0, 2.0, np.nan],
                   "norm_status": ["ok", "nan_flux", "ok"]})
    stamps = Stamps(img, msk, var, stars, dict(LSST_MASK_PLANES), {"EXPOSURE": "e1", "NORMED": True, "CENTERX": 4})
    write_stamps(tmp_path / "s.fits", stamps)
    back = read_stamps(tmp_path / "s.fits")
    assert_array_equal(back.image, img)
    assert_array_equal(back.mask, msk)
    assert_array_equal(back.variance, var)
    assert list(back.stars["gaia_id"]) == [2**62, 5, -1]
    assert list(back.stars["norm_status"]) == ["ok", "nan_flux", "ok"]
    assert back.mask_planes == LSST_MASK_PLANES
    assert back.header["EXPOSURE"] == "e1" and back.header["NORMED"] is True and back.header["CENTERX"] == 4


def test_empty_collection_is_a_valid_file(tmp_path):
    stars = Table({"gaia_id": np.zeros(0, np.int64), "annular_flux": np.zeros(0)})
    empty = Stamps(np.zeros((0, 275, 275), np.float32), np.zeros((0, 275, 275), np.int32),
                   np.zeros((0, 275, 275), np.float32), stars, dict(LSST_MASK_PLANES), {"NORMED": True})
    write_stamps(tmp_path / "e.fits", empty)
    back = read_stamps(tmp_path / "e.fits")
    assert len(back) == 0 and back.image.shape == (0, 275, 275) and back.mask.dtype == np.int32
    assert back.stars.colnames == ["gaia_id", "annular_flux"]
