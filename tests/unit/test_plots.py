"""Report figures: the radial-profile helper against analytic profiles, and every plot on tiny input."""

import matplotlib.image as mpimg
import matplotlib.text
import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose

from brightstamps import plots, stack
from brightstamps.masks import LSST_BAD_MASK_PLANES, LSST_MASK_PLANES
from brightstamps.stack import stack_stamps
from brightstamps.stampsfile import Stamps, read_stamps, write_stamps

BIT = {k: 1 << v for k, v in LSST_MASK_PLANES.items()}
BAD = list(LSST_BAD_MASK_PLANES)  # the config's bad_mask_planes (its default is LSST's)


def _annulus_mean(f_integral, r1, r2):
    """Area-weighted mean over r1 <= r < r2 of a profile whose integral of f(r) r dr is f_integral."""
    return 2.0 * (f_integral(r2) - f_integral(r1)) / (r2**2 - r1**2)


def _radii(shape, center):
    yy, xx = np.indices(shape)
    return np.hypot(xx - center[0], yy - center[1])


def test_azimuthal_profile_of_a_power_law():
    """r^-3 (the PSF wings): the mean over each annulus equals the analytic one within 1 %."""
    center = (150.3, 149.6)  # off the pixel grid
    r = _radii((301, 301), center)
    image = np.where(r > 0, r, 1.0) ** -3.0
    edges = np.geomspace(10, 140, 25)
    prof = plots.azimuthal_profile(image, center=center, edges=edges)
    expected = _annulus_mean(lambda s: -1.0 / s, edges[:-1], edges[1:])
    assert_allclose(prof, expected, rtol=0.01)


def test_azimuthal_profile_of_a_gaussian_with_masked_pixels():
    """A Gaussian, with a masked wedge and NaN pixels left out: still the analytic annulus mean."""
    sigma, center = 12.0, (60.0, 61.5)
    r = _radii((121, 121), center)
    image = np.exp(-(r**2) / (2 * sigma**2))
    yy, xx = np.indices(image.shape)
    good = ~((xx > center[0]) & (yy > center[1]))  # a masked quadrant
    image[~good] = 1e6  # masked values must not leak in
    image[5, :] = np.nan
    edges = np.arange(2.0, 31.0, 1.0)  # out to 2.5 sigma
    prof = plots.azimuthal_profile(image, center=center, edges=edges, good=good)
    expected = _annulus_mean(lambda s: -(sigma**2) * np.exp(-(s**2) / (2 * sigma**2)), edges[:-1], edges[1:])
    assert_allclose(prof, expected, rtol=0.01)


def test_azimuthal_profile_empty_bins_are_nan_without_warnings():
    prof = plots.azimuthal_profile(np.ones((5, 5)), center=(2, 2), edges=[0, 0.5, 0.9, 1.2, 50, 60])
    assert_allclose(prof[[0, 2, 3]], 1.0)
    assert np.isnan(prof[1]) and np.isnan(prof[4])
    assert np.all(
        np.isnan(
            plots.azimuthal_profile(np.ones((5, 5)), center=(2, 2), edges=[1, 2], good=np.zeros((5, 5), bool))
        )
    )


def _assert_png(path):
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert np.ptp(img[..., :3]) > 0.1  # not a single flat colour
    return img


SHAPE = (41, 41)


def _psf():
    r = _radii(SHAPE, (20, 20))
    return 100.0 / (1 + r**2 / 4.0) ** 1.5


def _stamps(n, *, exposure="e0", detector=0, failed=()):
    rng = np.random.default_rng(3)
    images = np.array([_psf() * 10 + rng.normal(scale=0.01, size=SHAPE) for _ in range(n)], np.float32)
    masks = np.zeros(images.shape, np.int32)
    if n:
        masks[0, 18:23, 18:23] = BIT["SAT"]
        masks[0, :, :5] = BIT["NO_DATA"]
        images[0, :, :5] = np.nan
    status = np.array(["few_valid_pixels" if i in failed else "ok" for i in range(n)], dtype="U16")
    stars = Table(
        {
            "gaia_id": np.arange(n, dtype=np.int64) + 1000 * detector,
            "g_mag": np.linspace(7.0, 9.0, n),
            "annular_flux": np.where(
                np.isin(np.arange(n), failed), np.nan, 10 ** (-0.4 * np.linspace(7, 9, n))
            ),
            "valid_annulus_fraction": np.ones(n),
            "norm_status": status,
        }
    )
    header = {
        "EXPOSURE": exposure,
        "BAND": "r",
        "DETECTOR": detector,
        "NORMED": True,
        "CENTERX": 20,
        "CENTERY": 20,
        "INNERRAD": 8,
        "OUTERRAD": 12,
        "VARNORM": True,
    }
    return Stamps(images, masks, np.ones(images.shape, np.float32), stars, dict(LSST_MASK_PLANES), header)


def test_stamp_mosaic_with_failed_and_masked_stamps(tmp_path):
    path = tmp_path / "mosaic.png"
    plots.plot_stamp_mosaic(_stamps(5, failed=(3,)), path, bad_mask_planes=BAD, columns=3)
    img = _assert_png(path)
    # the failed star's red frame is drawn
    red = (img[..., 0] > 0.75) & (img[..., 1] < 0.25) & (img[..., 2] < 0.25)
    assert red.sum() > 100


def test_stamp_mosaic_of_an_exposure_without_stamps(tmp_path):
    path = tmp_path / "empty.png"
    plots.plot_stamp_mosaic(_stamps(0), path, bad_mask_planes=BAD)
    _assert_png(path)


def test_plots_are_deterministic(tmp_path):
    for name in ("a.png", "b.png"):
        plots.plot_stamp_mosaic(_stamps(2), tmp_path / name, bad_mask_planes=BAD)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert b"Software" not in (tmp_path / "a.png").read_bytes()


def test_profiles_leave_out_the_configured_bad_mask_planes(tmp_path, monkeypatch):
    """A star's profile leaves out the pixels of the config's bad_mask_planes, not LSST's list: INTRP
    (not in LSST's) is left out when named, SAT (in LSST's) is kept when not named."""
    seen = []
    original = plots.azimuthal_profile

    def recording_profile(image, *, center, edges, good=None):
        seen.append(None if good is None else good.copy())
        return original(image, center=center, edges=edges, good=good)

    monkeypatch.setattr(plots, "azimuthal_profile", recording_profile)
    stamps = _stamps(1)
    stamps.mask[0, 30:33, 30:33] |= BIT["INTRP"]
    models = {"DEFAULT": {"image": _psf(), "n": np.ones(SHAPE, np.int32), "nstars": 1}}
    for planes, left_out in ((["INTRP", "NO_DATA"], ["INTRP"]), (BAD, ["SAT"])):
        seen.clear()
        plots.plot_profiles(
            models,
            [stamps],
            tmp_path / "profile.png",
            band="r",
            inner_radius=8,
            outer_radius=12,
            bad_mask_planes=planes,
        )
        star = seen[0]  # the star's profile, then the model's
        for plane in ("INTRP", "SAT"):
            flagged = (stamps.mask[0] & BIT[plane]) != 0
            assert not star[flagged].any() if plane in left_out else star[flagged].all(), (planes, plane)


def _write(tmp_path, stamps):
    path = tmp_path / f"{stamps.header['EXPOSURE']}.fits"
    write_stamps(path, stamps)
    return str(path)


@pytest.mark.parametrize("mode", ["annulus", "psf_fit"])
def test_extended_psf_profiles_and_annular_flux(tmp_path, mode):
    paths = [
        _write(tmp_path, _stamps(4, exposure="e0", detector=0, failed=(2,))),
        _write(tmp_path, _stamps(3, exposure="e1", detector=1)),
    ]
    stamps_list = [read_stamps(p) for p in paths]
    models, psf_stars = stack_stamps(
        paths,
        regions={"A": [0], "B": [1]},
        normalization=mode,
        statistic="MEANCLIP",
        num_sigma_clip=4.0,
        num_iter=3,
        bad_mask_planes=list(LSST_BAD_MASK_PLANES),
        min_valid_annulus_fraction=0.0,
        mag_limit=None,
        include_failed=False,
        psf_fit={
            "background_order": 1,
            "iterations": 2,
            "max_masked_flux_fraction": 0.97,
            "min_annulus_snr": 0,
            "min_model_snr": 3,
            "subtract_background": False,
        },
        memory_mb=100,
    )
    plots.plot_extended_psf(models, tmp_path / "psf.png", band="r")
    _assert_png(tmp_path / "psf.png")
    plots.plot_profiles(
        models,
        stamps_list,
        tmp_path / "profile.png",
        band="r",
        inner_radius=8,
        outer_radius=12,
        bad_mask_planes=BAD,
        psf_stars=psf_stars,
    )
    _assert_png(tmp_path / "profile.png")
    table = stack.band_stars(stamps_list, psf_stars)
    assert len(table) == 7
    assert list(table["region"]) == ["A"] * 4 + ["B"] * 3
    assert table["norm_status"][2] == "few_valid_pixels"
    assert ("amplitude" in table.colnames) == (mode == "psf_fit")
    if mode == "annulus":
        assert not table["used_in_stack"][2] and table["used_in_stack"].sum() == 6
    plots.plot_annular_flux(table, tmp_path / "flux.png", band="r")
    # the rules pass paths, read one file at a time (STARS only for the table): the same results
    assert all(
        (stack.band_stars(paths, psf_stars)[c] == table[c]).all()
        for c in table.colnames
        if table[c].dtype.kind != "f"
    )
    plots.plot_profiles(
        models,
        paths,
        tmp_path / "profile_paths.png",
        band="r",
        inner_radius=8,
        outer_radius=12,
        bad_mask_planes=BAD,
        psf_stars=psf_stars,
    )
    assert (tmp_path / "profile_paths.png").read_bytes() == (tmp_path / "profile.png").read_bytes()
    assert read_stamps(paths[0], cubes=False).image.shape == (0, 41, 41)
    img = _assert_png(tmp_path / "flux.png")
    assert img.shape[1] > img.shape[0] * (2.0 if mode == "psf_fit" else 1.2)  # a second panel in psf_fit mode


def test_empty_band_plots(tmp_path):
    plots.plot_annular_flux(
        stack.band_stars(
            [_stamps(0)], Table({"exposure": np.array([], str), "gaia_id": np.array([], np.int64)})
        ),
        tmp_path / "flux.png",
        band="r",
    )
    _assert_png(tmp_path / "flux.png")
    plots.plot_extended_psf({}, tmp_path / "psf.png", band="r")
    _assert_png(tmp_path / "psf.png")


def test_plots_of_a_band_whose_stack_is_empty(tmp_path):
    """No star passed the selection: an all-NaN model, no used star; the figures still come out."""
    models = {
        "DEFAULT": {
            "image": np.full(SHAPE, np.nan),
            "n": np.zeros(SHAPE, np.int32),
            "nstars": 0,
            "detectors": [0],
        }
    }
    stamps = _stamps(2, failed=(0, 1))
    psf_stars = Table(
        {
            "exposure": ["e0", "e0"],
            "gaia_id": np.array([0, 1], np.int64),
            "region": ["DEFAULT"] * 2,
            "used": [False, False],
        }
    )
    plots.plot_extended_psf(models, tmp_path / "psf.png", band="r")
    _assert_png(tmp_path / "psf.png")
    plots.plot_profiles(
        models,
        [stamps],
        tmp_path / "profile.png",
        band="r",
        inner_radius=8,
        outer_radius=12,
        bad_mask_planes=BAD,
        psf_stars=psf_stars,
    )
    _assert_png(tmp_path / "profile.png")
    plots.plot_annular_flux(stack.band_stars([stamps], psf_stars), tmp_path / "flux.png", band="r")
    _assert_png(tmp_path / "flux.png")


def test_extended_psf_figure_says_why_no_star_was_stacked(tmp_path, monkeypatch):
    """A region with no star stacked is words, not an all-grey image: in the figure and in the PNG's
    Description; a region with stars beside it is drawn as before."""
    from PIL import Image

    texts = []
    original = plots._save

    def recording_save(fig, path, description=None):
        texts.extend(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        original(fig, path, description=description)

    monkeypatch.setattr(plots, "_save", recording_save)
    why = "of the 2 stars of its 1 stamps file: 2 normalization failed (stack.include_failed_stars is false)"
    models = {
        "DEFAULT": {
            "image": np.full(SHAPE, np.nan),
            "n": np.zeros(SHAPE, np.int32),
            "nstars": 0,
            "detectors": [0],
            "empty_reason": why,
        }
    }
    plots.plot_extended_psf(models, tmp_path / "psf.png", band="r")
    _assert_png(tmp_path / "psf.png")
    said = f"No star was stacked for band r, region DEFAULT: {why}."
    assert said in [" ".join(t.split()) for t in texts]
    assert Image.open(tmp_path / "psf.png").text["Description"] == said
    # beside a region with stars; and a file written before the EMPTY card (no reason)
    texts.clear()
    models = {
        "A": {**models["DEFAULT"], "empty_reason": ""},
        "B": {"image": _psf(), "n": np.ones(SHAPE, np.int32), "nstars": 3, "detectors": [1]},
    }
    plots.plot_extended_psf(models, tmp_path / "two.png", band="r")
    _assert_png(tmp_path / "two.png")
    assert "No star was stacked for band r, region A" in [" ".join(t.split()) for t in texts]
    assert "region B: 3 stars\ndetectors 1" in texts
    described = Image.open(tmp_path / "two.png").text
    assert described == {"Description": "No star was stacked for band r, region A"}
    # an ordinary figure carries no Description
    plots.plot_extended_psf({"B": models["B"]}, tmp_path / "one.png", band="r")
    assert "Description" not in Image.open(tmp_path / "one.png").text


def test_stamp_mosaic_shows_only_the_brightest_when_there_are_many(tmp_path, monkeypatch):
    titles = []
    original = plots._save

    def recording_save(fig, path):
        titles.extend(ax.get_title() for ax in fig.axes if ax.get_title())
        titles.append(fig.get_suptitle())
        original(fig, path)

    monkeypatch.setattr(plots, "_save", recording_save)
    stamps = _stamps(7)
    stamps.stars["g_mag"] = [9.0, 7.5, 8.0, 7.0, 9.5, 8.5, 6.5]
    plots.plot_stamp_mosaic(stamps, tmp_path / "capped.png", bad_mask_planes=BAD, columns=4, max_panels=3)
    _assert_png(tmp_path / "capped.png")
    # the three brightest (G = 6.5, 7.0, 7.5: stamps 6, 3, 1), in their file order, and the title says so
    assert [t.split("\n")[0] for t in titles[:-1]] == ["1", "3", "6"]
    assert titles[-1].endswith("the 3 brightest of 7 stars")
