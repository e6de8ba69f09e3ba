"""Sky: bin geometry, a fitted sky recovers a known smooth sky under stars, compact storage."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps.errors import InputError
from brightstamps.exposure import Exposure
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.sky import fit_sky, make_sky_model, read_sky_model, write_sky_model
from brightstamps.skymodels import MeshSky, bin_centers, bin_edges

FIT = {
    "enabled": True,
    "mesh_size": 64,
    "num_sigma_clip": 3.0,
    "num_iter": 3,
    "mask_planes": ["BAD", "SAT", "DETECTED", "NO_DATA"],
    "min_valid_fraction": 0.3,
}


def _exposure(image, mask=None):
    mask = np.zeros(image.shape, np.int32) if mask is None else mask
    return Exposure(
        image.astype(np.float32),
        mask,
        np.ones(image.shape, np.float32),
        WCS(naxis=2),
        dict(LSST_MASK_PLANES),
        fits.Header(),
        "test.fits",
    )


def test_bin_edges_follow_afw():
    assert bin_edges(10, 3).tolist() == [0, 3, 7, 10]  # ends min(((i+1)*10 + 1)//3, 10)
    assert bin_edges(1024, 8).tolist() == list(range(0, 1025, 128))


def test_fit_recovers_a_gradient_sky_under_masked_stars():
    rng = np.random.default_rng(4)
    ny, nx = 384, 512
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = 5.0 + 0.01 * xx - 0.02 * yy
    image = sky + rng.normal(scale=3.0, size=(ny, nx))
    mask = np.zeros((ny, nx), np.int32)
    for x, y in [(100, 100), (300, 200), (450, 330)]:
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        image += 5000 * np.exp(-r2 / 50.0)
        mask[r2 < 20**2] |= 1 << LSST_MASK_PLANES["DETECTED"]
    model = fit_sky(_exposure(image, mask), **{k: v for k, v in FIT.items() if k != "enabled"})
    got = model.evaluate(0, ny, 0, nx)
    inner = (slice(32, -32), slice(32, -32))
    assert np.abs(got - sky)[inner].max() < 0.6  # noise per mesh: 3 / 64 ~ 0.05; spline of a plane
    assert np.abs(got - sky)[inner].mean() < 0.1
    # a sub-box evaluates to the same values as the full image
    assert_allclose(model.evaluate(100, 150, 200, 260), got[100:150, 200:260], rtol=1e-12)


def test_fully_masked_image_is_a_clear_error():
    image = np.zeros((128, 128))
    mask = np.full((128, 128), 1 << LSST_MASK_PLANES["NO_DATA"], np.int32)
    with pytest.raises(InputError, match="no mesh"):
        fit_sky(_exposure(image, mask), **{k: v for k, v in FIT.items() if k != "enabled"})


def test_compact_round_trip_of_a_fitted_model(tmp_path):
    model = MeshSky((300, 400), np.arange(12.0).reshape(3, 4), source="test")
    write_sky_model(tmp_path / "sky.fits", model)
    back = read_sky_model(tmp_path / "sky.fits", shape=(300, 400))
    assert back.mode == "FIT"
    assert_array_equal(back.evaluate(0, 300, 0, 400), model.evaluate(0, 300, 0, 400))
    assert (tmp_path / "sky.fits").stat().st_size < 20_000  # never a full-size copy


def test_given_full_size_model_is_referenced_and_subtracted_by_box(tmp_path):
    sky = np.arange(50 * 60, dtype=np.float32).reshape(50, 60)
    fits.PrimaryHDU(sky).writeto(tmp_path / "given.fits")
    model = make_sky_model(
        _exposure(np.zeros((50, 60))),
        sky_model_path=str(tmp_path / "given.fits"),
        do_apply_sky_corr=True,
        fit=FIT,
    )
    assert model.mode == "GIVEN"
    assert_array_equal(model.evaluate(10, 20, 5, 15), sky[10:20, 5:15])
    write_sky_model(tmp_path / "ref.fits", model)
    assert (tmp_path / "ref.fits").stat().st_size < 10_000
    assert_array_equal(read_sky_model(tmp_path / "ref.fits", shape=(50, 60)).evaluate(0, 50, 0, 60), sky)


def test_given_model_under_a_non_ascii_directory_is_referenced_and_read_back(tmp_path):
    """SKYFILE and SKYSRC hold the path escaped (a FITS header is ASCII) and give it back."""
    from brightstamps.files import path_from_card

    (tmp_path / "données").mkdir()
    given = tmp_path / "données" / "ciel.fits"
    sky = np.arange(50 * 60, dtype=np.float32).reshape(50, 60)
    fits.PrimaryHDU(sky).writeto(given)
    model = make_sky_model(
        _exposure(np.zeros((50, 60))), sky_model_path=str(given), do_apply_sky_corr=True, fit=FIT
    )
    write_sky_model(tmp_path / "ref.fits", model)
    with fits.open(tmp_path / "ref.fits") as hdul:
        h = hdul[0].header
        assert h["SKYFILE"].startswith("pct-utf8:") and path_from_card(h["SKYFILE"]) == str(given)
        assert path_from_card(h["SKYSRC"]) == str(given)
    back = read_sky_model(tmp_path / "ref.fits", shape=(50, 60))
    assert back.path == str(given) and back.source == str(given)
    assert_array_equal(back.evaluate(0, 50, 0, 60), sky)


def test_given_model_of_the_wrong_shape_is_a_clear_error(tmp_path):
    fits.PrimaryHDU(np.zeros((10, 10), np.float32)).writeto(tmp_path / "given.fits")
    with pytest.raises(InputError, match=r"given.fits: sky model has shape \(10, 10\)"):
        read_sky_model(tmp_path / "given.fits", shape=(50, 60))


def test_no_model_and_no_fit_leaves_the_sky():
    model = make_sky_model(
        _exposure(np.ones((20, 20))),
        sky_model_path=None,
        do_apply_sky_corr=True,
        fit={**FIT, "enabled": False},
    )
    assert model.mode == "NONE"
    assert_array_equal(model.evaluate(0, 5, 0, 5), 0.0)


def test_a_header_card_gives_a_constant_sky_that_survives_the_round_trip(tmp_path):
    exp = _exposure(np.full((40, 30), 300.0))
    exp.metadata["AVSKY"] = 212.5
    model = make_sky_model(
        exp, sky_model_path=None, do_apply_sky_corr=True, fit={**FIT, "header_keyword": "AVSKY"}
    )
    assert_allclose(model.evaluate(3, 40, 0, 30), 212.5, rtol=1e-12)
    write_sky_model(tmp_path / "sky.fits", model)
    assert_allclose(
        read_sky_model(tmp_path / "sky.fits", shape=(40, 30)).evaluate(0, 40, 25, 30), 212.5, rtol=1e-12
    )
    exp.metadata["AVSKY"] = "n/a"
    with pytest.raises(
        InputError, match="test.fits: sky_fit.header_keyword AVSKY: the header has no finite AVSKY"
    ):
        make_sky_model(
            exp, sky_model_path=None, do_apply_sky_corr=True, fit={**FIT, "header_keyword": "AVSKY"}
        )


# --- the models: one class each, one evaluate(y0, y1, x0, x1) -----------------------------------


def test_bin_centres_have_one_home_and_the_fitted_mesh_passes_through_them():
    from brightstamps import sky, skyfiles, skymodels

    assert bin_centers(10, 3).tolist() == [1.0, 4.5, 8.0]  # edges 0, 3, 7, 10: start + size/2 - 0.5
    assert_array_equal(bin_centers(1000, 16), (bin_edges(1000, 16)[:-1] + bin_edges(1000, 16)[1:]) / 2 - 0.5)
    for module in (sky, skyfiles):  # no second copy of the geometry
        assert not hasattr(module, "bin_edges") or module.bin_edges is skymodels.bin_edges
        assert not hasattr(module, "bin_centers") or module.bin_centers is skymodels.bin_centers
    values = np.arange(20.0).reshape(4, 5) ** 1.5
    model = MeshSky((300, 375), values, source="test")
    yc, xc = bin_centers(300, 4), bin_centers(375, 5)
    assert yc.tolist() == [37.0, 112.0, 187.0, 262.0] and xc.tolist() == [37.0, 112.0, 187.0, 262.0, 337.0]
    for j in range(4):  # the spline interpolates: it passes through each mesh value at its centre
        for i in range(5):
            y, x = int(yc[j]), int(xc[i])
            assert model.evaluate(y, y + 1, x, x + 1)[0, 0] == pytest.approx(values[j, i], rel=1e-12)


def test_sky_and_skyfiles_import_each_other_no_more():
    import ast
    import inspect

    from brightstamps import skyfiles, skymodels

    def imported(module):
        tree = ast.parse(inspect.getsource(module))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}

    assert "sky" not in imported(skyfiles)  # at the top or inside a function
    assert not {"sky", "skyfiles"} & imported(skymodels)


@pytest.mark.parametrize("case", ["none", "fit", "header", "image", "binned", "skycorr"])
def test_each_sky_model_is_its_own_class_and_survives_the_compact_file(tmp_path, case):
    from brightstamps import skymodels

    shape = (40, 50)
    exp = _exposure(np.full(shape, 300.0) + np.arange(50) * 0.1)
    exp.metadata["AVSKY"] = 212.5
    fit, path = {**FIT, "mesh_size": 10}, None
    if case == "none":
        fit = {**FIT, "enabled": False}
    elif case == "header":
        fit = {**FIT, "header_keyword": "AVSKY"}
    elif case == "image":
        path = tmp_path / "given.fits"
        fits.PrimaryHDU(np.arange(2000, dtype=np.float32).reshape(shape)).writeto(path)
    elif case == "binned":
        path = tmp_path / "given.fits"
        hdu = fits.PrimaryHDU(np.arange(12.0).reshape(3, 4))
        hdu.header.update({"IMNX": 50, "IMNY": 40, "INTERP": "linear"})
        hdu.writeto(path)
    elif case == "skycorr":
        path = tmp_path / "given.fits"
        image = fits.ImageHDU(np.arange(6.0, dtype=np.float32).reshape(2, 3))
        for key, value in {
            "INTERPSTYLE": 1,
            "UNDERSAMPLESTYLE": 1,
            "BKGD_X0": 0,
            "BKGD_Y0": 0,
            "BKGD_WIDTH": 50,
            "BKGD_HEIGHT": 40,
        }.items():
            image.header[f"HIERARCH {key}" if len(key) > 8 else key] = value  # as afw writes them
        fits.HDUList(
            [
                fits.PrimaryHDU(),
                image,
                fits.ImageHDU(np.zeros((2, 3), np.int32)),
                fits.ImageHDU(np.ones((2, 3), np.float32)),
            ]
        ).writeto(path)
    model = make_sky_model(
        exp, sky_model_path=None if path is None else str(path), do_apply_sky_corr=True, fit=fit
    )
    cls, mode, kind = {
        "none": ("NoSky", "NONE", None),
        "fit": ("MeshSky", "FIT", None),
        "header": ("HeaderSky", "BINNED", None),
        "image": ("ImageSky", "GIVEN", "image"),
        "binned": ("BinnedSky", "GIVEN", "binned"),
        "skycorr": ("SkyCorrSky", "GIVEN", "skycorr"),
    }[case]
    assert type(model) is getattr(skymodels, cls) and isinstance(model, skymodels.SkyModel)
    assert model.mode == mode and getattr(model, "kind", None) == kind
    assert model.path == (None if path is None else str(path))
    whole = model.evaluate(0, 40, 0, 50)
    assert whole.shape == shape and whole.dtype == np.float64 and np.isfinite(whole).all()
    assert_array_equal(model.evaluate(7, 19, 30, 50), whole[7:19, 30:50])
    write_sky_model(tmp_path / "sky.fits", model)
    with fits.open(tmp_path / "sky.fits") as hdul:
        cards = [k for k in hdul[0].header if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")]
        names = [h.name for h in hdul]
    extra = {
        "NONE": [],
        "FIT": ["SKYINTRP", "BINRULE"],
        "BINNED": ["SKYINTRP", "BINRULE"],
        "GIVEN": ["SKYFILE", "SKYSHA", "SKYKIND"],
    }[mode]
    assert cards == ["SKYMODE", "IMNY", "IMNX", "SKYSRC", *extra]  # the step's file format, unchanged
    assert names == (["PRIMARY", "SKYBINS"] if mode in ("FIT", "BINNED") else ["PRIMARY"])
    back = read_sky_model(tmp_path / "sky.fits", shape=shape)
    assert type(back) is type(model) and back.mode == mode and back.path == model.path
    assert_array_equal(back.evaluate(0, 40, 0, 50), whole)  # the very numbers, read back


def test_a_binned_skymode_holds_one_bin(tmp_path):
    """SKYMODE BINNED is a header card's constant: a file that says so with more bins is refused."""
    model = MeshSky((30, 40), np.ones((2, 2)), source="test")
    write_sky_model(tmp_path / "sky.fits", model)
    with fits.open(tmp_path / "sky.fits", mode="update") as hdul:
        hdul[0].header["SKYMODE"] = "BINNED"
    with pytest.raises(
        InputError,
        match=r"sky.fits: SKYMODE BINNED is a header card's constant, one bin; "
        r"SKYBINS has shape \(2, 2\)$",
    ):
        read_sky_model(tmp_path / "sky.fits", shape=(30, 40))
