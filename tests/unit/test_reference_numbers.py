"""Every number of section 11 of the reference write-up (bright-star-algorithm.md)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps.catalog import cutout_corner, flux_limit_njy, njy_to_mag
from brightstamps.normalize import annular_flux, annulus_mask
from brightstamps.stats import clipped_statistic
from brightstamps.warp import kernel_weights, model_stamp_size, nb90_rotations, warp_cutout


@pytest.mark.parametrize(
    ("stamp", "model", "center"),
    [
        ((250, 250), (275, 275), (137, 137)),
        ((251, 251), (277, 277), (138, 138)),
        ((100, 100), (111, 111), (55, 55)),
        ((200, 150), (221, 165), (110, 82)),
        ((25, 25), (27, 27), (13, 13)),
    ],
)
def test_output_stamp_geometry(stamp, model, center):
    size = model_stamp_size(stamp, 1.1)
    assert size == model
    assert (size[0] // 2, size[1] // 2) == center


@pytest.mark.parametrize(
    ("mag", "njy"),
    [
        (10, 363078054.7701003),
        (12, 57543993.73371567),
        (15, 3630780.54770101),
        (17, 575439.9373371566),
        (18, 229086.765276777),
        (20, 36307.8054770101),
    ],
)
def test_flux_limits(mag, njy):
    assert_allclose(flux_limit_njy(mag), njy, rtol=1e-14)


def test_inverse_flux_checks():
    assert_allclose(njy_to_mag([1e6, 1e7]), [16.4, 13.9], rtol=1e-14)


@pytest.mark.parametrize(
    ("radii", "count", "disc_in", "disc_out"),
    [((70, 80), 4708, 15373, 20081), ((40, 50), 2820, 5025, 7845), ((5, 10), 236, 81, 317)],
)
def test_annulus_pixel_counts(radii, count, disc_in, disc_out):
    shape, c = (275, 275), (137, 137)
    assert annulus_mask(shape, c, *radii).sum() == count
    yy, xx = np.mgrid[0:275, 0:275]
    d2 = (xx - 137) ** 2 + (yy - 137) ** 2
    assert (d2 <= radii[0] ** 2).sum() == disc_in
    assert (d2 <= radii[1] ** 2).sum() == disc_out


def test_default_annulus_spans_rows_57_to_217():
    rows = np.nonzero(annulus_mask((275, 275), (137, 137), 70, 80).any(axis=1))[0]
    assert (rows.min(), rows.max()) == (57, 217)


@pytest.mark.parametrize(
    ("yaw", "n"),
    [
        (0, 0),
        (0.02, 0),
        (44.9, 0),
        (45, 0),
        (89.9, 1),
        (90, 1),
        (180, 2),
        (270, 3),
        (-90, 0),
        (359.9, 3),
        (-0.5, 0),
    ],
)
def test_nb90_rotations(yaw, n):
    assert nb90_rotations(yaw) == n


def test_lanczos5_weights():
    w, raw = kernel_weights(np.array([0.5, 0.25, 0.0]), "lanczos5")
    assert_allclose(
        w[0],
        [
            0.00774056,
            -0.03349938,
            0.08115872,
            -0.18238552,
            0.62698561,
            0.62698561,
            -0.18238552,
            0.08115872,
            -0.03349938,
            0.00774056,
        ],
        atol=5e-9,
    )
    assert_allclose(
        w[1],
        [
            0.00900976,
            -0.03023838,
            0.06993576,
            -0.16222186,
            0.89721562,
            0.28931346,
            -0.10429157,
            0.0468165,
            -0.01802465,
            0.00248536,
        ],
        atol=5e-9,
    )
    assert_allclose(raw[:2], [0.9987459716674255, 0.9993344528119593], rtol=1e-13)
    assert w[2, 4] == 1.0
    others = np.delete(w[2], 4)
    assert np.all(np.abs(others) < 1e-15) and np.all(others != 0)  # tiny but nonzero: masks spread


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.r_[np.arange(1, 21), 1000.0], 10.5),
        (np.r_[np.arange(0, 11), 30.0], 5.0),
        (np.r_[np.ones(10), 2, 50], 1.0),
    ],
)
def test_meanclip_cases(values, expected):
    got, _, _ = clipped_statistic(values, statistic="MEANCLIP", num_sigma_clip=4, num_iter=3)
    assert got == pytest.approx(expected, abs=1e-12)


def test_meanclip_empty_or_all_masked_is_nan():
    assert np.isnan(clipped_statistic(np.array([]), statistic="MEANCLIP", num_sigma_clip=4, num_iter=3)[0])
    v = np.arange(5.0)
    assert np.isnan(
        clipped_statistic(v, valid=np.zeros(5, bool), statistic="MEANCLIP", num_sigma_clip=4, num_iter=3)[0]
    )


def test_cutout_and_warp_example():
    c = np.array([1000.7, 2000.2])
    corner = cutout_corner(c, (250, 250))
    assert corner.tolist() == [875, 1875]
    assert np.floor(corner - 12.5 + 0.5).astype(int).tolist() == [863, 1863]  # LSST position = xy0
    cut = np.ones((250, 250), np.float32)
    img, msk, var = warp_cutout(
        cut,
        np.zeros((250, 250), np.int32),
        cut,
        center=tuple(c - corner),
        affine=np.eye(2),
        out_shape=(275, 275),
        kernel="lanczos5",
        no_data_bit=256,
    )
    good = np.isfinite(img)
    cols = np.nonzero(good.any(axis=0))[0]
    rows = np.nonzero(good.any(axis=1))[0]
    assert (cols.min(), cols.max(), cols.size) == (16, 256, 241)
    assert (rows.min(), rows.max(), rows.size) == (16, 256, 241)
    assert_array_equal(msk[~good], 256)
    assert np.all(np.isinf(var[~good]))
    # shift = -(0.7, 0.2): output pixel 137 reads the cut-out at the star, 125.7 / 125.2
    assert_allclose(img[good], 1.0, rtol=1e-6)


def test_near_edge_corner_truncates_toward_zero():
    assert cutout_corner([100.3, -20.6], [250, 250]).tolist() == [-24, -145]
    assert np.floor(np.array([100.3, -20.6]) - 125).astype(int).tolist() == [-25, -146]


def test_brightstarstamps_fixture_annular_fluxes():
    rng = np.random.Generator(np.random.MT19937(5))
    images = [rng.random((25, 25)).astype(np.float32) for _ in range(3)]
    x0s, y0s = rng.integers(11, size=3), rng.integers(11, size=3)
    mags = rng.random(3)
    mags[1] = 18.0
    fluxes = rng.random(3)
    assert list(zip(x0s.tolist(), y0s.tolist(), strict=True)) == [(9, 2), (4, 10), (2, 3)]
    assert_allclose(mags, [0.45731352046226237, 18.0, 0.16245021816120153], rtol=1e-15)
    assert_allclose(fluxes, [0.18605610266516337, 0.17324196320672847, 0.7960255671779456], rtol=1e-15)
    assert (mags < 7).sum() == 2 and (mags > 7).sum() == 1  # selectByMag(magMax=7) / (magMin=7)
    ann = annulus_mask((25, 25), (12, 12), 5, 10)
    assert ann.sum() == 236
    expected = [0.5189067497573224, 0.47587589711450057, 0.47309987964325634]
    for im, exp in zip(images, expected, strict=True):
        flux, frac = annular_flux(
            im, np.zeros((25, 25), np.int32), ann, bad_bits=0, statistic="MEAN", num_sigma_clip=4, num_iter=3
        )
        assert flux == pytest.approx(exp, rel=1e-12)
        assert frac == 1.0
