"""Report figures: the radial-profile helpers against analytic profiles, and every plot on tiny input."""

import matplotlib.image as mpimg
import matplotlib.text
import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose
from stack_options import stack_options

from brightstamps import plots, profile, simulate, stack
from brightstamps.errors import InputError
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
    prof = profile.azimuthal_profile(image, center=center, edges=edges)
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
    prof = profile.azimuthal_profile(image, center=center, edges=edges, good=good)
    expected = _annulus_mean(lambda s: -(sigma**2) * np.exp(-(s**2) / (2 * sigma**2)), edges[:-1], edges[1:])
    assert_allclose(prof, expected, rtol=0.01)


def test_azimuthal_profile_empty_bins_are_nan_without_warnings():
    prof = profile.azimuthal_profile(np.ones((5, 5)), center=(2, 2), edges=[0, 0.5, 0.9, 1.2, 50, 60])
    assert_allclose(prof[[0, 2, 3]], 1.0)
    assert np.isnan(prof[1]) and np.isnan(prof[4])
    assert np.all(
        np.isnan(
            profile.azimuthal_profile(
                np.ones((5, 5)), center=(2, 2), edges=[1, 2], good=np.zeros((5, 5), bool)
            )
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
    original = profile.azimuthal_profile

    def recording_profile(image, *, center, edges, good=None):
        seen.append(None if good is None else good.copy())
        return original(image, center=center, edges=edges, good=good)

    monkeypatch.setattr(profile, "azimuthal_profile", recording_profile)
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
        assert len(seen) == 1  # the star's profile (the model's is its PROFILE table)
        star = seen[0]
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
        **stack_options(
            regions={"A": [0], "B": [1]},
            normalization=mode,
            weighting="inverse_variance",
            psf_fit={"iterations": 2, "min_model_snr": 3, "subtract_background": False},
            flux_radius=5,
            memory_mb=100,
        ),
    )
    plots.plot_extended_psf(models, tmp_path / "psf.png", band="r")
    _assert_png(tmp_path / "psf.png")
    plots.plot_psf_profile(models, tmp_path / "psf_profile.png", band="r", annulus_radii=(8, 12))
    _assert_png(tmp_path / "psf_profile.png")
    plots.plot_star_fits(psf_stars, tmp_path / "fits.png", band="r", header={"NORMMODE": mode})
    _assert_png(tmp_path / "fits.png")
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


# ---------------------------------------------------------------------------------------------
# The whole extended PSF (issue 15): core and wings, the profile with its dynamic range and the
# truth, the stars' fits. Models are hand-made dicts as read_extended_psf returns them.
# ---------------------------------------------------------------------------------------------


def _recording(monkeypatch):
    """Record, for every figure saved, its texts, its lines (label -> (x, y)), axes and images."""
    figures = []
    original = plots._save

    def recording_save(fig, path, description=None):
        axes = [ax for ax in fig.axes if ax.axison]
        figures.append(
            {
                "texts": [" ".join(t.get_text().split()) for t in fig.findobj(matplotlib.text.Text)],
                "lines": {
                    line.get_label(): (np.array(line.get_xdata(), float), np.array(line.get_ydata(), float))
                    for ax in fig.axes
                    for line in ax.get_lines()
                },
                "axes": len(axes),
                "images": [
                    (im.get_array().copy(), im.norm.vmin, im.norm.vmax)
                    for ax in axes
                    for im in ax.get_images()
                ],
                "description": description,
            }
        )
        original(fig, path, description=description)

    monkeypatch.setattr(plots, "_save", recording_save)
    return figures


def _psf_image(shape):
    c = ((shape[1] - 1) // 2, (shape[0] - 1) // 2)
    r = _radii(shape, c)
    return 100.0 / (1 + r**2 / 4.0) ** 1.5, c


def _region(shape=SHAPE, *, variance=1e-4, scale=1.0, **extra):
    """A region's model as read_extended_psf gives it: image with its core, planes and PROFILE."""
    image, c = _psf_image(shape)
    image = image * scale
    var = np.full(shape, float(variance))
    n = np.full(shape, 3, np.int32)
    rmax = min(c) + 0.5
    table = profile.model_profile(image, var, n, center=c, edges=profile.profile_edges(rmax))
    return {"image": image, "variance": var, "n": n, "nstars": 3, "detectors": [0], "profile": table, **extra}


def _table(values, errors):
    """A PROFILE table with known values: bins r_in 0, 0.5, 1.5, ... and their radii."""
    k = len(values)
    r_in = np.concatenate([[0.0], np.arange(0.5, k - 0.5)])
    r_out = np.arange(0.5, k + 0.5)
    radius = np.concatenate([[0.0], np.arange(1.0, k) + 0.1])
    return Table(
        {
            "r_in": r_in,
            "r_out": r_out,
            "radius": radius,
            "value": np.asarray(values, float),
            "error": np.asarray(errors, float),
            "nstars": np.full(k, 3),
            "npix": np.full(k, 10),
        }
    )


def test_profile_figure_states_the_dynamic_range_of_a_known_profile(tmp_path, monkeypatch):
    """S/N = 1000, 100, 10, 2, then 0.2: the last bin with S/N >= 1 is the 4th (value 1, r = 3.1):
    3 decades below the peak. A negative bin is an upper limit at value + error; the central bin
    is drawn at r = 0.25 on the log axis, never at 0."""
    figures = _recording(monkeypatch)
    table = _table([1000, 100, 10, 1, 0.1, -0.05], [1, 1, 1, 0.5, 0.5, 0.1])
    assert profile.dynamic_range(table) == (3.0, 3.1)
    plots.plot_psf_profile({"A": {"profile": table, "nstars": 5}}, tmp_path / "p.png", band="r")
    _assert_png(tmp_path / "p.png")
    fig = figures[0]
    assert "3.0 decades from the peak to S/N = 1 at 3.1 px" in fig["texts"]
    x, y = fig["lines"]["extended PSF (model)"]
    assert x[0] == plots.CENTRAL_BIN_RADIUS == 0.25 and np.all(x > 0)
    assert_allclose(y[:5], [1000, 100, 10, 1, 0.1]) and np.isnan(y[5])
    x, y = fig["lines"]["mean <= 0: upper limit value + error (1 bins)"]
    assert_allclose(x, [5.1]) and assert_allclose(y, [0.05])
    x, _ = fig["lines"]["S/N = 1 at 3.1 px"]
    assert_allclose(x, [3.1, 3.1])
    assert "true PSF (simulator), same bins and pixels" not in fig["lines"] and fig["axes"] == 1
    # the file's own numbers are the ones written
    plots.plot_psf_profile(
        {"A": {"profile": table, "nstars": 5, "dynamic_range": 2.5, "dynamic_radius": 2.1}},
        tmp_path / "q.png",
        band="r",
    )
    assert "2.5 decades from the peak to S/N = 1 at 2.1 px" in figures[1]["texts"]


def test_dynamic_range_text_when_the_noise_is_not_reached_or_there_is_no_signal():
    table = _table([1000, 100, 10], [1, 1, 1])  # S/N >= 10 out to the last bin
    assert not profile.noise_reached(table)
    assert profile.noise_reached(_table([1000, 100, 10, 0.1], [1, 1, 1, 1]))
    decades, radius = profile.dynamic_range(table)
    words = plots.dynamic_range_text(decades, radius, noise_reached=False)
    assert words == ">= 2.0 decades from the peak to the last bin at 2.1 px (S/N > 1 there)"
    assert plots.dynamic_range_text(np.nan, np.nan).startswith("dynamic range unknown")
    assert profile.wing_noise(_table([1000, 100, 10, 0.1], [1, 1, 2, 1])) == 2.0


def _truth_for(region, factor, pad=10):
    """The model's image times *factor* on a larger grid (as truth.fits is), with its centre."""
    image = region["image"]
    big = np.zeros((image.shape[0] + 2 * pad, image.shape[1] + 2 * pad))
    big[pad:-pad, pad:-pad] = image * factor
    c = ((image.shape[1] - 1) // 2 + pad, (image.shape[0] - 1) // 2 + pad)
    return big, c


@pytest.mark.parametrize("psfnorm", ["flux", "annulus"])
def test_truth_is_normalized_as_the_file_says_and_overlaid(tmp_path, monkeypatch, psfnorm):
    """A truth that is the model times 7: once normalized as PSFNORM says, its profile is the
    model's in every bin ((model - truth) / error = 0); without a truth no overlay and no panel."""
    figures = _recording(monkeypatch)
    if psfnorm == "flux":
        scale = 1 / profile.flux_within(_region()["image"], 5.0)
        region = _region(variance=scale**2, scale=scale)  # the same S/N as below
        header = {"PSFNORM": "flux", "FLUXRAD": 5.0}
    else:
        region = _region(variance=1.0)
        ring = (_radii(SHAPE, (20, 20)) > 8) & (_radii(SHAPE, (20, 20)) <= 12)
        region["annulus_level"] = float(np.mean(region["image"][ring]))  # the model's own level
        header = {"PSFNORM": "annulus"}
    truth = _truth_for(region, 7.0)
    plots.plot_psf_profile(
        {"A": region}, tmp_path / "t.png", band="r", header=header, truth=truth, annulus_radii=(8, 12)
    )
    _assert_png(tmp_path / "t.png")
    fig = figures[0]
    _, model = fig["lines"]["extended PSF (model)"]
    _, true = fig["lines"]["true PSF (simulator), same bins and pixels"]
    assert_allclose(true, model, rtol=1e-10)
    assert fig["axes"] == 2  # the residual panel
    _, radius = profile.dynamic_range(region["profile"])
    nbins = int(np.sum(region["profile"]["radius"] <= radius))
    assert nbins >= 10
    assert f"out to S/N = 1 ({nbins} bins): rms 0.00, median |model / truth - 1| = 0.00 %" in fig["texts"]
    # no truth: neither the overlay nor the residual panel
    plots.plot_psf_profile({"A": region}, tmp_path / "n.png", band="r", header=header, annulus_radii=(8, 12))
    assert "true PSF (simulator), same bins and pixels" not in figures[1]["lines"] and figures[1]["axes"] == 1
    # a file that does not say how its model is normalized: the truth is not drawn, and the figure says why
    plots.plot_psf_profile({"A": region}, tmp_path / "u.png", band="r", header={}, truth=truth)
    assert "true PSF (simulator), same bins and pixels" not in figures[2]["lines"]
    assert "true PSF not drawn: the file does not state its normalization (PSFNORM)" in figures[2]["texts"]


def test_a_biased_model_shows_in_the_residuals():
    """A model 2 % above the truth in every bin: median |model / truth - 1| = 2 %, and the rms of
    (model - truth) / error is 0.02 value / error, over the bins out to the radius given."""
    table = _table([1000, 100, 10, 1], [10, 1, 0.1, 0.01])
    truth = np.array([1000, 100, 10, 1]) / 1.02
    agree = profile.compare_profiles(table, truth, radius=2.1)
    assert agree["nbins"] == 3
    assert_allclose(agree["median_fraction"], 0.02)
    assert_allclose(agree["rms"], (0.02 / 1.02) * 100)  # value / error = 100 in each bin


def test_normalized_like_flux_and_annulus():
    image, c = _psf_image(SHAPE)
    flux = profile.normalized_like(image * 3, psfnorm="flux", center=c, fluxrad=6.0)
    assert_allclose(profile.flux_within(flux, 6.0), 1.0)
    ann = profile.normalized_like(
        image, psfnorm="annulus", center=c, annulus_level=1.02, annulus_radii=(8, 12)
    )
    ring = (_radii(SHAPE, c) ** 2 > 64) & (_radii(SHAPE, c) ** 2 <= 144)  # afw's integer circle
    assert_allclose(np.mean(ann[ring]), 1.02)
    with pytest.raises(InputError, match="PSFNORM 'peak': expected 'flux' or 'annulus'"):
        profile.normalized_like(image, psfnorm="peak", center=c)
    with pytest.raises(InputError, match="FLUXRAD is None"):
        profile.normalized_like(image, psfnorm="flux", center=c)
    with pytest.raises(InputError, match="no positive flux"):
        profile.normalized_like(np.zeros(SHAPE), psfnorm="flux", center=c, fluxrad=3)


def test_on_grid_puts_the_star_on_the_grids_centre():
    image = np.arange(25.0).reshape(5, 5)
    out = profile.on_grid(image, (2, 2), (3, 7), (3, 1))
    assert out[1, 3] == image[2, 2]
    assert_allclose(out[:, 1:6], image[1:4, :]) and np.isnan(out[:, [0, 6]]).all()


def test_read_true_psf(tmp_path):
    from astropy.io import fits

    psf = np.ones((5, 7))
    hdu = fits.ImageHDU(psf, name="PSF")
    hdu.header["CENTERX"], hdu.header["CENTERY"] = 3, 2
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "truth.fits")
    image, center = simulate.read_true_psf(tmp_path / "truth.fits")
    assert center == (3, 2) and image.shape == (5, 7) and image.dtype == np.float64
    fits.HDUList([fits.PrimaryHDU()]).writeto(tmp_path / "nopsf.fits")
    with pytest.raises(InputError, match=r"^demo truth file .*nopsf.fits: no 2-D PSF HDU$"):
        simulate.read_true_psf(tmp_path / "nopsf.fits")


def test_extended_psf_figure_shows_the_core_on_a_stretch_from_the_peak_to_the_wing_noise(
    tmp_path, monkeypatch
):
    figures = _recording(monkeypatch)
    region = _region((81, 81), variance=4.0, nstars=3)
    noise = profile.wing_noise(region["profile"])
    assert np.isfinite(noise) and noise < 1  # the S/N = 1 radius lies inside the stamp
    plots.plot_extended_psf(
        {"A": region}, tmp_path / "psf.png", band="r", header={"PSFNORM": "flux", "FLUXRAD": 5}
    )
    _assert_png(tmp_path / "psf.png")
    (whole, vmin, vmax), (core, zmin, zmax) = figures[0]["images"]
    assert vmax == 100.0 == np.max(whole) and vmin == pytest.approx(noise, rel=1e-12)
    assert (zmin, zmax) == (vmin, vmax)
    assert core.shape == (plots.CORE_BOX, plots.CORE_BOX) == (41, 41) and core[20, 20] == 100.0
    decades, radius = profile.dynamic_range(region["profile"])
    assert any(
        f"{decades:.1f} decades from the peak to S/N = 1 at {radius:.1f} px" in t for t in figures[0]["texts"]
    )
    assert any("model (flux within r = 5 px = 1), log scale" == t for t in figures[0]["texts"])


def _fit_stars():
    return Table(
        {
            "exposure": ["e0"] * 6,
            "gaia_id": np.arange(6, dtype=np.int64),
            "g_mag": [7.0, 8.0, 9.0, 12.0, 13.0, np.nan],
            "used": [True, True, False, True, False, True],
            "stack_status": [
                "used",
                "used",
                "fit rejected: masked flux fraction 0.99 > 0.97",
                "used",
                "not fitted: fainter than the magnitude cut",
                "used",
            ],
            "reduced_chi2": [3.0, 1.1, 0.9, 1.0, np.nan, 1.2],
            "masked_flux_fraction": [0.96, 0.2, 0.99, 0.0, np.nan, 0.1],
            "fit_ok": [True, True, False, True, False, True],
        }
    )


def test_star_fits_figure(tmp_path, monkeypatch):
    figures = _recording(monkeypatch)
    plots.plot_star_fits(_fit_stars(), tmp_path / "fits.png", band="r", header={"NORMMODE": "psf_fit"})
    _assert_png(tmp_path / "fits.png")
    lines = figures[0]["lines"]
    x, y = lines["used in the stack (3)"]  # the star without G is not drawn
    assert_allclose(x, [7, 8, 12]) and assert_allclose(y, [3.0, 1.1, 1.0])
    x, y = lines["fitted, left out: fit rejected (1)"]
    assert_allclose(x, [9]) and assert_allclose(y, [0.9])
    x, _ = lines["masked flux fraction > 0.5, saturated core (2)"]
    assert_allclose(x, [7, 9])
    assert_allclose(lines["reduced chi-square = 1"][1], [1, 1])
    texts = figures[0]["texts"]
    assert "1 star(s) not fitted: not fitted (1) 1 fitted star(s) without G not shown" in texts


def test_star_fits_figure_in_annulus_mode_says_the_stars_were_not_fitted(tmp_path, monkeypatch):
    from PIL import Image

    stars = _fit_stars()
    stars.remove_columns(["reduced_chi2", "masked_flux_fraction", "fit_ok"])
    plots.plot_star_fits(stars, tmp_path / "fits.png", band="r", header={"NORMMODE": "annulus"})
    _assert_png(tmp_path / "fits.png")
    assert (
        Image.open(tmp_path / "fits.png").text["Description"]
        == "The stars were not fitted (normalization: annulus)"
    )


def test_profile_figures_of_an_empty_region_say_why(tmp_path, monkeypatch):
    figures = _recording(monkeypatch)
    why = "of the 2 stars of its 1 stamps file: 2 normalization failed"
    models = {
        "A": {
            "image": np.full(SHAPE, np.nan),
            "n": np.zeros(SHAPE, np.int32),
            "nstars": 0,
            "empty_reason": why,
        },
        "B": _region(),
    }
    plots.plot_psf_profile(models, tmp_path / "p.png", band="r", truth=_truth_for(models["B"], 1.0))
    _assert_png(tmp_path / "p.png")
    assert figures[0]["description"] == f"No star was stacked for band r, region A: {why}."
    assert "region B: 3 stars" in figures[0]["texts"]


def test_stars_profiles_use_the_models_bins_and_draw_the_central_bin_at_a_quarter_pixel(
    tmp_path, monkeypatch
):
    figures = _recording(monkeypatch)
    models = {"DEFAULT": _region()}
    plots.plot_profiles(
        models,
        [_stamps(2)],
        tmp_path / "profile.png",
        band="r",
        inner_radius=8,
        outer_radius=12,
        bad_mask_planes=BAD,
    )
    _assert_png(tmp_path / "profile.png")
    xs = [x for x, _ in figures[0]["lines"].values()]
    nbins = len(models["DEFAULT"]["profile"])
    assert len(xs) == 3 and all(len(x) == nbins and x[0] == 0.25 and np.all(x > 0) for x in xs)
