"""Warping: known shifts, flat fields, flux conservation, mask/NaN spreading, rotation."""

import numpy as np
import pytest
from astropy.wcs import WCS
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize
from warp_reference import warp_cutout_exact

from brightstamps import simulate as sim
from brightstamps.warp import KERNELS, distortion_free_maps, kernel_weights, warp_cutout

NO_DATA = 1 << 8


def _warp(img, *, center, affine=None, out=(61, 61), kernel="lanczos5", mask=None, var=None):
    affine = np.eye(2) if affine is None else affine
    mask = np.zeros(img.shape, np.int32) if mask is None else mask
    var = np.ones(img.shape, np.float32) if var is None else var
    return warp_cutout(
        img.astype(np.float32),
        mask,
        var,
        center=center,
        affine=affine,
        out_shape=out,
        kernel=kernel,
        no_data_bit=NO_DATA,
    )


def _reference_pixel(img, ux, uy, kernel, mask=None):
    """Slow, explicit afw WarpAtOnePoint for one output pixel: value and OR of the masks."""
    n = KERNELS[kernel]
    ix, iy = int(np.floor(ux)), int(np.floor(uy))
    wx, _ = kernel_weights(np.array([ux - ix]), kernel)
    wy, _ = kernel_weights(np.array([uy - iy]), kernel)
    total, bits = 0.0, 0
    for a, ky in enumerate(range(-(n - 1), n + 1)):
        for b, kx in enumerate(range(-(n - 1), n + 1)):
            total += wy[0, a] * wx[0, b] * img[iy + ky, ix + kx]
            if mask is not None and wy[0, a] * wx[0, b] != 0:
                bits |= int(mask[iy + ky, ix + kx])
    return total if mask is None else (total, bits)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_integer_shift_reproduces_input(kernel):
    rng = np.random.default_rng(1)
    img = rng.normal(size=(80, 90)).astype(np.float32)
    out, msk, var = _warp(img, center=(45.0, 40.0), kernel=kernel)
    # output pixel (i, j) reads cut-out pixel (i - 30 + 45, j - 30 + 40)
    expected = img[10:71, 15:76]
    good = np.isfinite(out)
    assert good.sum() > 0.8 * out.size
    assert_allclose(out[good], expected[good], rtol=0, atol=1e-6)
    assert_array_equal(msk[good], 0)


def test_flat_image_stays_flat_under_a_general_affine_map():
    img = np.full((120, 120), 7.0, np.float32)
    affine = np.array([[1.0, 0.0], [0.0, 1.0]])
    out, _, _ = _warp(img, center=(60.3, 59.8), affine=affine)
    assert_allclose(out[np.isfinite(out)], 7.0, rtol=1e-6)
    rot = np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    out, _, _ = _warp(img, center=(60.3, 59.8), affine=rot)
    assert_allclose(out[np.isfinite(out)], 7.0, rtol=1e-6)


def test_total_flux_conserved_under_a_distortion():
    yy, xx = np.mgrid[0:200, 0:200]
    c = (100.37, 99.81)
    img = 1000 * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * 4.0**2)) / (2 * np.pi * 16)
    affine = np.array([[1.1, 0.03], [-0.02, 0.92]])  # scale and shear: |det A| = 1.0126
    out, _, _ = _warp(img, center=c, affine=affine, out=(121, 121))
    assert np.isfinite(out).all()
    # normalized Lanczos weights (afw) interpolate to ~0.1 %, so that is the flux tolerance
    assert out.sum() == pytest.approx(img.sum(), rel=2e-3)
    # without the relArea factor |det A| it would be 1.3 % off
    assert abs(out.sum() / abs(np.linalg.det(affine)) - img.sum()) > 1e-2 * img.sum()


@pytest.mark.parametrize("kernel", ["lanczos5", "lanczos3", "bilinear"])
def test_matches_explicit_reference_implementation(kernel):
    rng = np.random.default_rng(2)
    img = rng.normal(size=(100, 100))
    affine = np.array([[0.98, 0.05], [-0.04, 1.02]])
    c = (50.23, 49.61)
    mask = (rng.random((100, 100)) < 0.02).astype(np.int32) << rng.integers(0, 9, size=(100, 100)).astype(
        np.int32
    )
    out, msk, _ = _warp(img, center=c, affine=affine, out=(41, 41), kernel=kernel, mask=mask)
    for i, j in [(20, 20), (0, 0), (40, 3), (7, 33), (13, 29)]:
        d = np.array([i - 20, j - 20])
        ux, uy = np.asarray(c) + affine @ d
        value, bits = _reference_pixel(img, ux, uy, kernel, mask)
        assert out[j, i] == pytest.approx(value * abs(np.linalg.det(affine)), rel=1e-5, abs=1e-6)  # relArea
        assert msk[j, i] == bits
    footprint = (2 * KERNELS[kernel]) ** 2
    assert (msk != 0).mean() > 0.7 * (1 - 0.98**footprint)  # the OR spreads sparse bits over the footprint


_MAPS = {
    "near-identity": (
        np.array([[1.002, 0.003], [-0.002, 0.998]]),
        np.array([[1e-6, -2e-6, 5e-7], [3e-7, 1e-6, -1e-6]]),
    ),
    "pure shift": (np.eye(2), np.zeros((2, 3))),
    "rotated 37 deg, scaled": (
        1.05 * np.array([[np.cos(0.65), -np.sin(0.65)], [np.sin(0.65), np.cos(0.65)]]),
        np.array([[2e-5, 0, -1e-5], [0, 3e-5, 1e-5]]),
    ),
    "strong distortion": (
        np.array([[0.9, 0.1], [-0.05, 1.1]]),
        np.array([[2e-4, -1e-4, 5e-5], [-5e-5, 1e-4, 2e-4]]),
    ),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("name", sorted(_MAPS))
def test_compiled_kernel_matches_the_exact_weight_reference(kernel, name):
    """The compiled warp (tabulated weights, runs) against exact sinc weights: 1e-5, the mask exactly.

    The cut-out has a positive star on a sky, noise, NaN rows (off the detector) and sparse mask
    bits; the centre is off-centre so that part of the stamp falls off the cut-out.
    """
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:150, 0:160]
    img = 100.0 + 5e4 / (1 + ((xx - 70.3) ** 2 + (yy - 81.6) ** 2) / 9.0) ** 1.5 + rng.normal(size=xx.shape)
    img = img.astype(np.float32)
    img[:4] = np.nan
    var = rng.uniform(90, 110, size=xx.shape).astype(np.float32)
    mask = (rng.random(xx.shape) < 0.01).astype(np.int32) << rng.integers(0, 12, size=xx.shape).astype(
        np.int32
    )
    affine, quad = _MAPS[name]
    kw = dict(
        center=(70.3, 81.6),
        affine=affine,
        quadratic=quad,
        out_shape=(161, 171),
        kernel=kernel,
        no_data_bit=NO_DATA,
    )
    got = warp_cutout(img, mask, var, **kw)
    ref = warp_cutout_exact(img, mask, var, **kw)
    finite = np.isfinite(ref[0])
    assert 0.3 < finite.mean() < 0.95  # some of the stamp is off the cut-out or NaN
    assert_array_equal(np.isfinite(got[0]), finite)
    assert_array_equal(got[1], ref[1])
    assert_array_equal(np.isinf(got[2]), np.isinf(ref[2]))
    assert_allclose(got[0][finite], ref[0][finite], rtol=1e-5)
    assert_allclose(got[2][finite], ref[2][finite], rtol=1e-5)
    assert got[0].dtype == np.float32 and got[1].dtype == np.int32 and got[2].dtype == np.float32


def test_mask_and_nan_spread_over_the_whole_footprint():
    img = np.zeros((80, 80), np.float32)
    mask = np.zeros((80, 80), np.int32)
    mask[40, 40] = 1 << 3  # CR
    img[20, 20] = np.nan
    out, msk, _ = _warp(img, center=(40.0, 40.0), mask=mask)
    # integer shift: output (30, 30) reads (40, 40); the footprint spans offsets -4..+5
    hit = np.nonzero(msk == 1 << 3)
    assert (hit[0].min(), hit[0].max(), hit[1].min(), hit[1].max()) == (25, 34, 25, 34)
    nan = np.isnan(out[:50, :50]) & (msk[:50, :50] != NO_DATA)
    rows, cols = np.nonzero(nan)
    assert (rows.min(), rows.max()) == (5, 14)


def test_variance_propagation_of_white_noise():
    """Warped white noise has the variance that the propagated variance plane predicts."""
    rng = np.random.default_rng(3)
    sigma2 = 4.0
    c = (30.37, 29.61)  # fractional offsets where interpolation lowers the variance most
    var_in = np.full((60, 60), sigma2, np.float32)
    samples = []
    for _ in range(400):
        out, _, var = _warp(
            rng.normal(scale=np.sqrt(sigma2), size=(60, 60)), center=c, out=(21, 21), var=var_in
        )
        samples.append(out[5:16, 5:16].ravel())
    measured = np.var(np.asarray(samples), axis=0, ddof=1).mean()
    predicted = var[5:16, 5:16].mean()
    assert predicted < 0.8 * sigma2  # interpolation averages pixels: less variance per pixel
    assert measured == pytest.approx(predicted, rel=0.03)


def test_distortion_free_map_of_a_pure_tan_wcs_is_the_identity_at_the_axis():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [-500.0, 300.0]
    wcs.wcs.cd = [[-5.5e-5, 0.0], [0.0, 5.5e-5]]
    maps, quads = distortion_free_maps(
        wcs, np.array([[100.0, 100.0], [900.0, 50.0]]), boresight=(150.0, 2.0), half_size=(137, 137)
    )
    assert_allclose(maps, np.broadcast_to(np.eye(2), (2, 2, 2)), atol=1e-6)
    assert np.abs(quads).max() < 1e-8


@pytest.mark.parametrize(("detector", "yaw"), sim.DEMO_DETECTORS)
def test_stamp_map_matches_the_wcs_at_the_stamp_corners(detector, yaw):
    """s = c + A d + Q q(d) against LSST's exact T^-1(T(c) + d), solved here with scipy and the WCS."""
    wcs = sim.detector_wcs(detector=detector, yaw_deg=yaw, size=2048)
    bore = sim.BORESIGHT
    proj = WCS(naxis=2)
    proj.wcs.ctype, proj.wcs.crval, proj.wcs.crpix, proj.wcs.cdelt = (
        ["RA---TAN", "DEC--TAN"],
        bore,
        [0, 0],
        [1, 1],
    )

    def gnomonic(p):
        return proj.wcs_world2pix(wcs.all_pix2world(np.atleast_2d(p), 0), 1)[0]

    p0 = wcs.wcs.crpix - 1
    j0 = np.column_stack([(gnomonic(p0 + e) - gnomonic(p0 - e)) / 2 for e in np.eye(2)])

    def tan_pixels(p):
        return np.linalg.solve(j0, gnomonic(p))

    centers = np.array([[30.0, 40.0], [1000.0, 1024.0], [2000.0, 1900.0]])
    maps, quads = distortion_free_maps(wcs, centers, boresight=bore, half_size=(137, 137))
    worst_linear = 0.0
    for c, a, q in zip(centers, maps, quads, strict=True):
        for d in [(-137, -137), (137, -137), (-137, 137), (137, 137), (0, 75)]:
            d = np.array(d, float)
            exact = optimize.fsolve(lambda p, d=d, c=c: tan_pixels(p) - tan_pixels(c) - d, c + d, xtol=1e-10)
            ours = c + a @ d + q @ np.array([d[0] ** 2, d[0] * d[1], d[1] ** 2])
            assert np.hypot(*(ours - exact)) < 5e-3  # what is left is the cubic term
            worst_linear = max(worst_linear, np.hypot(*(c + a @ d - exact)))
    assert worst_linear > 0.05  # the curvature term matters: the linear map alone is off by ~0.1 px


def test_warped_stamps_do_not_depend_on_blocks_or_on_reading_from_a_memory_map(tmp_path):
    from astropy.table import Table

    from brightstamps.masks import LSST_MASK_PLANES
    from brightstamps.stampsfile import Stamps, read_stamps, write_stamps
    from brightstamps.warp import warp_stamps

    wcs = sim.detector_wcs(detector=1, yaw_deg=90.0, size=2048)
    rng = np.random.default_rng(3)
    n = 5
    centers = rng.uniform(200, 1800, size=(n, 2))
    corners = np.trunc(centers - 30.5).astype(np.int64)
    stars = Table(
        {"x": centers[:, 0], "y": centers[:, 1], "cutout_x0": corners[:, 0], "cutout_y0": corners[:, 1]}
    )
    cutouts = Stamps(
        rng.normal(size=(n, 61, 61)).astype(np.float32),
        rng.integers(0, 4, size=(n, 61, 61)).astype(np.int32),
        rng.uniform(1, 2, size=(n, 61, 61)).astype(np.float32),
        stars,
        dict(LSST_MASK_PLANES),
    )
    write_stamps(tmp_path / "cut.fits", cutouts)
    options = {
        "kernel": "lanczos3",
        "do_apply_transform": True,
        "model_stamp_buffer": 1.1,
        "nb90_rots": 1,
        "orientation": "quarter_turns",
        "boresight": sim.BORESIGHT,
    }
    whole = warp_stamps(cutouts, wcs, **options).collect()
    assert whole.image.shape == (n, 67, 67) and np.isfinite(whole.image[:, 33, 33]).all()
    mapped = read_stamps(tmp_path / "cut.fits", memmap=True)
    for source, block in ((cutouts, 2), (mapped, 1), (mapped, 32)):
        part = warp_stamps(source, wcs, **options, block=block).collect()
        for a, b in ((part.image, whole.image), (part.mask, whole.mask), (part.variance, whole.variance)):
            assert_array_equal(a, b)
