"""Given sky models: binned files with their interpolation, and LSST skyCorr BackgroundLists."""

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps.errors import InputError
from brightstamps.sky import read_sky_model, write_sky_model

SHAPE = (90, 130)  # (ny, nx)


def smooth(x, y):
    return 100.0 + 0.01 * x - 0.02 * y + 5.0 * np.sin(x / 400.0) * np.cos(y / 300.0)


def afw_centers(size, nbins):
    """Bin centres written out from the write-up: end_i = min(((i+1) W + n//2)//n, W), centre orig + size/2 - 0.5."""
    centers, start = [], 0
    for i in range(nbins):
        end = min(((i + 1) * size + nbins // 2) // nbins, size)
        centers.append(start + (end - start) / 2 - 0.5)
        start = end
    return np.array(centers)


def test_binned_model_of_a_smooth_function_is_reproduced_with_cubic_interpolation(tmp_path):
    ny, nx = 1000, 1200
    nby, nbx = 16, 19  # ~64 px bins, afw geometry (no centre cards)
    yc, xc = afw_centers(ny, nby), afw_centers(nx, nbx)
    hdu = fits.ImageHDU(smooth(xc[None, :], yc[:, None]).astype(np.float64))
    hdu.header["IMNX"], hdu.header["IMNY"], hdu.header["INTERP"] = nx, ny, "cubic"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "binned.fits")
    model = read_sky_model(tmp_path / "binned.fits", shape=(ny, nx))
    assert model.mode == "GIVEN" and model.kind == "binned"
    for y0, y1, x0, x1 in ((0, 40, 0, 50), (480, 560, 600, 700), (960, 1000, 1150, 1200)):
        yy, xx = np.mgrid[y0:y1, x0:x1]
        # stated tolerance: 0.01, 0.2 % of the 5-unit variation (measured 2e-3 inside, 6e-3 at the
        # extrapolated edges, for ~63 px bins)
        assert_allclose(model.evaluate(y0, y1, x0, x1), smooth(xx, yy), rtol=0, atol=1e-2)
    # referenced by the compact file, not copied
    write_sky_model(tmp_path / "ref.fits", model)
    back = read_sky_model(tmp_path / "ref.fits", shape=(ny, nx))
    assert_array_equal(back.evaluate(100, 150, 200, 260), model.evaluate(100, 150, 200, 260))
    assert (tmp_path / "ref.fits").stat().st_size < 10_000


def test_binned_model_with_explicit_centres_and_linear_interpolation_is_exact_for_a_bilinear_sky(tmp_path):
    def bilinear(x, y):
        return 3.0 + 0.2 * x - 0.1 * y + 1e-3 * x * y

    xc, yc = 10.0 + 25.0 * np.arange(5), 5.0 + 20.0 * np.arange(4)
    hdu = fits.PrimaryHDU(bilinear(xc[None, :], yc[:, None]))
    for key, value in {
        "IMNX": SHAPE[1],
        "IMNY": SHAPE[0],
        "INTERP": "linear",
        "BINX0": 10.0,
        "BINDX": 25.0,
        "BINY0": 5.0,
        "BINDY": 20.0,
    }.items():
        hdu.header[key] = value
    hdu.writeto(tmp_path / "binned.fits")
    model = read_sky_model(tmp_path / "binned.fits", shape=SHAPE)
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    assert_allclose(model.evaluate(0, SHAPE[0], 0, SHAPE[1]), bilinear(xx, yy), rtol=0, atol=1e-9)


def _element(stats, style, *, undersample=1, width=SHAPE[1], height=SHAPE[0], drop=()):
    image = fits.ImageHDU(np.asarray(stats, np.float32))
    # APPROXSTYLE -1: no Chebyshev approximation (the reader does not use the APPROX* cards)
    cards = {
        "INTERPSTYLE": style,
        "UNDERSAMPLESTYLE": undersample,
        "APPROXSTYLE": -1,
        "APPROXORDERX": 1,
        "APPROXORDERY": -1,
        "APPROXWEIGHTING": True,
        "BKGD_X0": 0,
        "BKGD_Y0": 0,
        "BKGD_WIDTH": width,
        "BKGD_HEIGHT": height,
    }
    for key, value in cards.items():
        if key not in drop:  # afw writes the long keywords as HIERARCH cards
            image.header[f"HIERARCH {key}" if len(key) > 8 else key] = value
    shape = np.shape(stats)
    return [image, fits.ImageHDU(np.zeros(shape, np.int32)), fits.ImageHDU(np.ones(shape, np.float32))]


def linear_reference(stats):
    """afw's y-then-x linear interpolation with linear extrapolation, NaN bins dropped, by loops."""
    ny, nx = SHAPE
    yc, xc = afw_centers(ny, stats.shape[0]), afw_centers(nx, stats.shape[1])

    def lin(xs, vs, t):
        if t < xs[0]:
            return vs[0] + (t - xs[0]) * (vs[1] - vs[0]) / (xs[1] - xs[0])
        if t > xs[-1]:
            return vs[-1] + (t - xs[-1]) * (vs[-1] - vs[-2]) / (xs[-1] - xs[-2])
        return np.interp(t, xs, vs)

    cols = np.empty((ny, stats.shape[1]))
    for ix in range(stats.shape[1]):
        ok = np.isfinite(stats[:, ix])
        for y in range(ny):
            cols[y, ix] = lin(yc[ok], stats[ok, ix], y)
    out = np.empty(SHAPE)
    for y in range(ny):
        for x in range(nx):
            out[y, x] = lin(xc, cols[y], x)
    return out


def test_skycorr_is_the_sum_of_its_linear_and_akima_elements(tmp_path):
    rng = np.random.default_rng(7)
    linear_stats = rng.normal(10.0, 2.0, size=(3, 4)).astype(np.float32).astype(np.float64)
    linear_stats[1, 2] = np.nan  # dropped: that column interpolates through its other two bins

    def bilinear(x, y):
        return -2.0 + 0.03 * x + 0.05 * y - 4e-4 * x * y

    yc, xc = afw_centers(SHAPE[0], 6), afw_centers(SHAPE[1], 5)
    akima_stats = bilinear(xc[None, :], yc[:, None]).astype(np.float32).astype(np.float64)
    akima_stats[2, 1] = np.nan  # 5 bins left: still Akima
    akima_stats[[0, 4], 3] = np.nan  # 4 left: reduced to a cubic spline
    hdus = [fits.PrimaryHDU()] + _element(linear_stats, 1) + _element(akima_stats, 5)
    fits.HDUList(hdus).writeto(tmp_path / "skyCorr.fits")

    model = read_sky_model(tmp_path / "skyCorr.fits", shape=SHAPE)
    assert model.kind == "skycorr"
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    # Akima and natural cubic splines reproduce data linear along each axis exactly, so the
    # second element is bilinear(x, y) everywhere (extrapolated edges included)
    known = linear_reference(linear_stats) + bilinear(xx, yy).astype(np.float32).astype(np.float64)
    full = model.evaluate(0, SHAPE[0], 0, SHAPE[1])
    assert_allclose(full, known, rtol=0, atol=2e-4)  # float32 bin values of the bilinear sky
    assert_allclose(model.evaluate(30, 61, 100, 130), full[30:61, 100:130], rtol=0, atol=1e-12)


def test_skycorr_undersampled_with_throw_is_a_clear_error(tmp_path):
    fits.HDUList([fits.PrimaryHDU()] + _element(np.ones((3, 3)), 5, undersample=0)).writeto(
        tmp_path / "s.fits"
    )
    with pytest.raises(InputError, match=r"s.fits: 3 valid bin\(s\) along y are too few for AKIMA_SPLINE"):
        read_sky_model(tmp_path / "s.fits", shape=SHAPE).evaluate(0, 5, 0, 5)


@pytest.mark.parametrize(
    ("hdus", "message"),
    [
        (
            lambda: [fits.PrimaryHDU()] + _element(np.ones((3, 3)), 1, drop=("BKGD_WIDTH",)),
            r"skyCorr.fits: skyCorr element \(HDU 1\) lacks the BKGD_WIDTH card",
        ),
        (
            lambda: [fits.PrimaryHDU()] + _element(np.ones((3, 3)), 1, width=200),
            r"skyCorr.fits: skyCorr element \(HDU 1\) is for an image of shape \(90, 200\)",
        ),
        (
            lambda: [fits.PrimaryHDU()] + _element(np.ones((3, 3)), 1)[:2],
            r"skyCorr.fits: a skyCorr file has 3 image HDUs .* it has 2",
        ),
    ],
)
def test_malformed_skycorr_is_a_one_line_error_naming_the_file(tmp_path, hdus, message):
    fits.HDUList(hdus()).writeto(tmp_path / "skyCorr.fits")
    with pytest.raises(InputError, match=message):
        read_sky_model(tmp_path / "skyCorr.fits", shape=SHAPE)


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        ({"IMNX": 130, "IMNY": 90}, r"binned.fits: binned sky model lacks the INTERP card"),
        ({"IMNX": 130, "INTERP": "cubic"}, r"binned.fits: binned sky model lacks the IMNY card"),
        (
            {"IMNX": 131, "IMNY": 90, "INTERP": "cubic"},
            r"binned.fits: binned sky model is for an image of shape \(90, 131\)",
        ),
        ({"IMNX": 130, "IMNY": 90, "INTERP": "spline"}, r"binned.fits: INTERP 'spline' is not one of"),
        (
            {"IMNX": 130, "IMNY": 90, "INTERP": "linear", "BINX0": 1.0},
            r"binned.fits: .* all of BINX0, BINDX, BINY0, BINDY",
        ),
        ({}, r"binned.fits: sky model has shape \(4, 5\), the exposure \(90, 130\) \(a binned model needs"),
    ],
)
def test_malformed_binned_model_is_a_one_line_error_naming_the_file(tmp_path, cards, message):
    hdu = fits.PrimaryHDU(np.ones((4, 5)))
    for key, value in cards.items():
        hdu.header[key] = value
    hdu.writeto(tmp_path / "binned.fits")
    with pytest.raises(InputError, match=message):
        read_sky_model(tmp_path / "binned.fits", shape=SHAPE)
