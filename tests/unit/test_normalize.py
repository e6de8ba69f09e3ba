"""Normalization: a scaled stamp normalizes back; LSST's failure rules and their order."""

import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps.masks import LSST_BAD_MASK_PLANES, LSST_MASK_PLANES
from brightstamps.normalize import annulus_mask, normalize_stamps
from brightstamps.stampsfile import Stamps

OPTIONS = {
    "annular_flux_radii": (5, 10),
    "annular_flux_statistic": "MEANCLIP",
    "num_sigma_clip": 4.0,
    "num_iter": 3,
    "bad_mask_planes": list(LSST_BAD_MASK_PLANES),
    "min_valid_annulus_fraction": 0.0,
    "discard_nan_flux_stars": False,
    "normalize_variance": True,
}
BIT = {k: 1 << v for k, v in LSST_MASK_PLANES.items()}


def _stamps(images, masks=None):
    images = np.asarray(images, np.float32)
    n = len(images)
    masks = np.zeros(images.shape, np.int32) if masks is None else np.asarray(masks, np.int32)
    stars = Table({"gaia_id": np.arange(n, dtype=np.int64)})
    return Stamps(
        images,
        masks,
        np.ones(images.shape, np.float32),
        stars,
        dict(LSST_MASK_PLANES),
        {"CENTERX": 12, "CENTERY": 12},
    )


def _profile():
    yy, xx = np.mgrid[0:25, 0:25]
    return (100.0 / (1 + ((xx - 12) ** 2 + (yy - 12) ** 2) / 4.0)).astype(np.float32)


def test_scaled_stamp_normalizes_back():
    p = _profile()
    out = normalize_stamps(_stamps([p, 7.5 * p]), **OPTIONS).collect()
    assert_allclose(out.image[1], out.image[0], rtol=1e-6)
    assert out.stars["annular_flux"][1] == pytest.approx(7.5 * out.stars["annular_flux"][0], rel=1e-6)
    ann = annulus_mask((25, 25), (12, 12), 5, 10)
    assert out.image[0][ann].mean() == pytest.approx(1.0, rel=1e-6)  # smooth profile: MEANCLIP = MEAN
    assert_allclose(out.variance[1], 1.0 / out.stars["annular_flux"][1] ** 2, rtol=1e-6)
    assert list(out.stars["norm_status"]) == ["ok", "ok"]


def test_variance_left_alone_for_lsst_parity():
    out = normalize_stamps(_stamps([_profile()]), **{**OPTIONS, "normalize_variance": False}).collect()
    assert_array_equal(out.variance, 1.0)


def test_failure_rules_in_lsst_order():
    p = _profile()
    ann = annulus_mask((25, 25), (12, 12), 5, 10)
    detected_only = np.where(ann, BIT["DETECTED"], 0)  # used by the statistic, but not "clean"
    all_bad = np.where(ann, BIT["BAD"], 0)
    images = [p, p, -p, p, p]
    masks = [np.zeros((25, 25)), detected_only, np.zeros((25, 25)), all_bad, np.zeros((25, 25))]
    images[4] = np.where(ann, np.nan, p)
    out = normalize_stamps(_stamps(images, masks), **OPTIONS).collect()
    assert list(out.stars["norm_status"]) == [
        "ok",
        "few_valid_pixels",
        "negative_flux",
        "few_valid_pixels",
        "nan_flux",
    ]
    assert np.isfinite(out.stars["annular_flux"][0])
    assert np.isnan(out.stars["annular_flux"][1:]).all()
    assert_array_equal(out.image[1], p)  # failed stars stay un-normalized
    assert out.stars["valid_annulus_fraction"][1] == 0.0
    assert out.header["NORMED"][0] is True


def test_strict_valid_fraction_threshold():
    p = _profile()
    ann = annulus_mask((25, 25), (12, 12), 5, 10)
    mask = np.zeros((25, 25), np.int32)
    idx = np.flatnonzero(ann)
    mask.flat[idx[:118]] = BIT["DETECTED"]  # exactly half of 236 clean
    out = normalize_stamps(_stamps([p], [mask]), **{**OPTIONS, "min_valid_annulus_fraction": 0.5}).collect()
    assert out.stars["valid_annulus_fraction"][0] == 0.5
    assert out.stars["norm_status"][0] == "few_valid_pixels"  # 118 > 118 is false
    out = normalize_stamps(_stamps([p], [mask]), **{**OPTIONS, "min_valid_annulus_fraction": 0.49}).collect()
    assert out.stars["norm_status"][0] == "ok"


def test_discard_nan_flux_stars_drops_failures():
    p = _profile()
    out = normalize_stamps(_stamps([p, -p, p]), **{**OPTIONS, "discard_nan_flux_stars": True}).collect()
    assert len(out) == 2 and out.image.shape[0] == 2
    assert list(out.stars["gaia_id"]) == [0, 2]


def test_clipping_ignores_a_hot_annulus_pixel():
    p = _profile()
    ann = annulus_mask((25, 25), (12, 12), 5, 10)
    hot = p.copy()
    hot.flat[np.flatnonzero(ann)[3]] = 1e6
    out = normalize_stamps(_stamps([p, hot]), **OPTIONS).collect()
    # one of 236 pixels is lost to the clip, nothing more
    assert out.stars["annular_flux"][1] == pytest.approx(out.stars["annular_flux"][0], rel=5e-3)
    mean = normalize_stamps(_stamps([p, hot]), **{**OPTIONS, "annular_flux_statistic": "MEAN"}).collect()
    assert mean.stars["annular_flux"][1] > 100 * mean.stars["annular_flux"][0]


@pytest.mark.parametrize("discard", [False, True])
def test_blocks_of_any_size_give_the_same_stamps(discard):
    p = _profile()
    stamps = _stamps([p, -p, 3 * p, -2 * p, 0.5 * p])
    options = {**OPTIONS, "discard_nan_flux_stars": discard}
    whole = normalize_stamps(stamps, **options).collect()
    for block in (1, 2, 3):
        part = normalize_stamps(stamps, **options, block=block).collect()
        assert (
            list(part.stars["gaia_id"])
            == list(whole.stars["gaia_id"])
            == ([0, 2, 4] if discard else [0, 1, 2, 3, 4])
        )
        for a, b in ((part.image, whole.image), (part.mask, whole.mask), (part.variance, whole.variance)):
            assert_array_equal(a, b)
