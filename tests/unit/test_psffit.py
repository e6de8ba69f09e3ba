"""The whole extended PSF on stamps of a simulated field whose PSF and fluxes are known.

A few saturated stars and many faint unsaturated ones, as in a real field (tests/psf_field.py).
The model must hold the core (from the unsaturated stars) and the wings (from the saturated
ones) on one scale, with honest errors and converging backgrounds.
"""

import numpy as np
import pytest
from psf_field import NOISE_VARIANCE, write_field
from stack_options import stack_options

from brightstamps import simulate as sim
from brightstamps.profile import azimuthal_profile, flux_within, profile_edges
from brightstamps.psffit import background_basis, pin_backgrounds, radial_knots, tie_knot
from brightstamps.stack import stack_stamps

SHAPE = (151, 151)
CENTER = (75, 75)
OPTIONS = stack_options(normalization="psf_fit", weighting="inverse_variance", flux_radius=30)
RADIUS = np.hypot(*(np.indices(SHAPE) - 75))
truth_unit = sim.true_psf_stamp(SHAPE)


def _field(tmp_path, seed=1, files=2, **kw):
    paths, fluxes = [], []
    for d in range(files):
        path = tmp_path / f"s{seed}_d{d}.fits"
        flux, truth = write_field(path, seed=100 * seed + d, shape=SHAPE, detector=d, **kw)
        paths.append(str(path))
        fluxes.append(flux)
    return paths, np.concatenate(fluxes), truth / flux_within(truth, OPTIONS["flux_radius"])


def _ratio_profile(model, truth, good):
    edges = profile_edges(75.5)
    return edges, azimuthal_profile(model, center=CENTER, edges=edges, good=good) / azimuthal_profile(
        truth, center=CENTER, edges=edges, good=good
    )


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    paths, flux, truth = _field(tmp_path_factory.mktemp("field"))
    models, stars = stack_stamps(paths, **OPTIONS)
    return models["DEFAULT"], stars, flux, truth


def test_the_model_holds_core_and_wings_of_the_true_psf(field):
    m, _, _, truth = field
    assert m["normalization"] == "flux" and m["converged"] and 2 <= m["iterations"] < 20
    assert flux_within(m["image"], OPTIONS["flux_radius"]) == pytest.approx(1.0, abs=1e-6)
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    assert good.all()  # no hole: the unsaturated stars give the core
    edges, ratio = _ratio_profile(m["image"], truth, good)
    assert np.all(np.abs(ratio - 1) <= 0.01), dict(zip(edges[:-1].round(1), ratio.round(4), strict=True))
    assert m["image"][75, 75] == pytest.approx(truth[75, 75], rel=0.02)
    # the stored profile is the same thing, with a finite error
    profile = m["profile"]
    assert profile["value"][0] == pytest.approx(m["image"][75, 75]) and np.all(profile["error"] > 0)
    assert m["dynamic_range"] > 4 and m["dynamic_radius"] > 50


def test_amplitudes_equal_the_true_fluxes_up_to_one_factor(field):
    _, stars, flux, _ = field
    assert stars["used"].all() and set(stars["stack_status"]) == {"used"}
    k = stars["amplitude"] / flux
    rel_err = stars["amplitude_err"] / stars["amplitude"]
    k0 = np.median(k[rel_err < 0.0015])
    precise = rel_err < 0.0015
    assert precise.sum() >= 16  # the saturated stars and the brightest unsaturated ones
    assert np.all(np.abs(k[precise] / k0 - 1) <= 0.005), k[precise] / k0
    saturated = stars["masked_flux_fraction"] > 0.3
    assert saturated.sum() >= 12  # saturated stars are fitted on their wings
    # the faint stars' stated errors are right: their pulls have unit spread
    faint = rel_err > 0.003
    pull = (k[faint] / k0 - 1) / rel_err[faint]
    assert np.std(pull) == pytest.approx(1.0, abs=0.25) and abs(np.mean(pull)) < 0.4
    assert np.all(stars["reduced_chi2"] < 1.5) and np.median(stars["reduced_chi2"]) == pytest.approx(
        1, abs=0.05
    )


def test_the_stated_error_is_honest(field):
    m, _, _, truth = field
    beyond = (RADIUS > 20) & (m["n"] > 0)
    chi = (m["image"] - truth)[beyond] / np.sqrt(m["variance"][beyond])
    assert np.std(chi) == pytest.approx(1.0, abs=0.2) and abs(np.mean(chi)) < 0.2


def test_two_noise_seeds_agree_within_their_errors(field, tmp_path):
    m1 = field[0]
    paths, _, _ = _field(tmp_path, seed=2)
    m2 = stack_stamps(paths, **OPTIONS)[0]["DEFAULT"]
    beyond = RADIUS > 3
    chi = (m1["image"] - m2["image"])[beyond] / np.sqrt(m1["variance"] + m2["variance"])[beyond]
    assert np.std(chi) == pytest.approx(1.0, abs=0.2) and abs(np.mean(chi)) < 0.2


def test_unweighted_wings_are_noise_where_weighted_ones_are_signal(field, tmp_path):
    """LSST's unweighted stack of the same stars: the faint stars' noise swamps its wings."""
    m, _, _, truth = field
    paths, _, _ = _field(tmp_path)
    plain = stack_stamps(paths, **{**OPTIONS, "weighting": "none"})[0]["DEFAULT"]
    ring = (RADIUS > 50) & (RADIUS < 70)
    rms = lambda model: np.sqrt(np.mean((model[ring] - truth[ring]) ** 2))  # noqa: E731
    assert rms(plain["image"]) > 5 * rms(m["image"])


def test_backgrounds_per_stamp_converge_and_stay_out_of_the_wings(tmp_path):
    """A random pedestal and gradient on every stamp (not scaling with the star): the fitted
    backgrounds take them, the iterations converge, the model is the true PSF."""
    paths, flux, truth = _field(tmp_path, pedestal=1.0, gradient=1.0)
    models, stars = stack_stamps(paths, **OPTIONS)
    m = models["DEFAULT"]
    assert m["converged"] and m["last_change"] < 1e-3
    edges, ratio = _ratio_profile(m["image"], truth, m["n"] > 0)
    inner = edges[1:] <= 60
    assert np.all(np.abs(ratio[inner] - 1) <= 0.01), dict(
        zip(edges[:-1].round(1), ratio.round(4), strict=True)
    )
    assert np.all(np.abs(ratio - 1) <= 0.02)


def test_without_backgrounds_the_iterations_do_not_trade_flux_with_the_wings(tmp_path):
    """Stamps with no background at all, order-2 backgrounds fitted and subtracted: once trading
    flux with the wings (x5.5 at the annulus after 2 iterations), now a fixed point."""
    paths, _, truth = _field(tmp_path)
    options = {**OPTIONS, "psf_fit": {**OPTIONS["psf_fit"], "background_order": 2, "tolerance": 1e-4}}
    m = stack_stamps(paths, **options)[0]["DEFAULT"]
    assert m["converged"] and m["last_change"] < 1e-4
    edges, ratio = _ratio_profile(m["image"], truth, m["n"] > 0)
    assert np.all(np.abs(ratio - 1) <= 0.02), dict(zip(edges[:-1].round(1), ratio.round(4), strict=True))


def test_lsst_background_order_takes_the_wing_light(tmp_path):
    """LSST 2026 fits the background first, on pixels free of the star's DETECTED footprint: the
    wings beyond it are taken as background. Shown on the brightest star, noiseless."""
    _, _, truth = _field(tmp_path, files=1)
    flux = 2e8
    star = flux * truth * flux_within(truth, 1e9) ** 0  # unit-flux PSF times the flux
    detected = star > 5 * np.sqrt(NOISE_VARIANCE)
    basis = background_basis(SHAPE, 1)
    free = ~detected
    coef, *_ = np.linalg.lstsq(basis[:, free].T, star[free], rcond=None)
    lsst = star - np.tensordot(coef, basis, axes=1)
    ring = (RADIUS > 60) & (RADIUS < 70)
    assert np.mean(lsst[ring]) / np.mean(star[ring]) < 0.7  # > 30 % of the wing light lost


def test_pinning_moves_only_the_part_that_scales_with_the_star():
    rng = np.random.default_rng(0)
    a = 10 ** rng.uniform(2, 6, 200)
    true = rng.normal(scale=2.0, size=(200, 3))
    e = np.array([1e-4, -3e-5, 2e-5])  # a pedestal and tilt of the model
    fitted = true - a[:, None] * e + rng.normal(scale=0.01, size=(200, 3))
    pinned, slope = pin_backgrounds(a, fitted, np.full((200, 3), 1e-4), np.ones(200, bool))
    assert slope == pytest.approx(-e, abs=3e-6)
    assert np.std(pinned - true) < 0.5


def test_a_galaxy_beside_the_brightest_star_is_clipped_not_stacked(tmp_path):
    """An undetected disk (2 sigma per pixel at its peak, below any per-pixel clip) in the stamp
    of the brightest star, which carries most of the weight there: the smoothed comparison with
    the other stars finds it; a plain weighted mean takes it into the model. The same stamps
    without the disk (same noise) say what the disk changed."""
    yy, xx = np.indices(SHAPE)
    host = 4.5  # G: the brightest star by far (its core saturated out to 20 px)
    r_disk = np.hypot(xx - 130, yy - 75)  # 55 px from the star
    noise = np.sqrt(NOISE_VARIANCE + sim.mag_to_flux(host) * truth_unit[75, 130])
    disk = 2.0 * noise * np.exp(-r_disk / 5.0)
    _field(tmp_path)
    others = [str(tmp_path / f"s1_d{d}.fits") for d in range(2)]
    models = {}
    for name, extra in (("disk", lambda k, flux: disk if k == 0 else 0.0), ("none", None)):
        host_path = tmp_path / f"host_{name}.fits"  # one exposure holds the host (and its disk)
        write_field(host_path, seed=7, shape=SHAPE, detector=9, extra=extra, host_mag=host)
        for statistic in ("MEANCLIP", "MEAN"):
            models[name, statistic] = stack_stamps(
                [str(host_path), *others], **{**OPTIONS, "statistic": statistic}
            )
    stars = models["none", "MEAN"][1]
    amplitude = stars["amplitude"][stars["exposure"] == "e9"][0]  # the host's, in model units
    where = r_disk < 15
    disk_in_model = disk[where].sum() / amplitude

    def carried(statistic):
        with_disk, without = (models[k, statistic][0]["DEFAULT"]["image"] for k in ("disk", "none"))
        return np.sum((with_disk - without)[where]) / disk_in_model

    assert carried("MEAN") > 0.3  # the host carries most of the weight: the disk enters the mean
    # what is left is the host's own noise there, which the clipped model no longer holds
    assert abs(carried("MEANCLIP")) < 0.2 * carried("MEAN")


@pytest.mark.parametrize(("sigma", "knot"), [(0.6, 1.0), (1.7, 2.0), (3.4, 4.0), (7.0, 8.0)])
def test_the_tie_starts_at_the_knot_nearest_the_cores_half_width(sigma, knot):
    # a Gaussian's half width at half maximum is 1.1774 sigma: 0.71, 2.0, 4.0, 8.2 px
    yy, xx = np.indices((101, 101))
    model = np.exp(-((xx - 50.0) ** 2 + (yy - 50.0) ** 2) / (2 * sigma**2))
    knots = radial_knots(model.shape, (50, 50))
    assert knots[tie_knot(model, (50, 50), knots)] == knot
    # no core (a saturated stack's hole): no tie
    model[45:56, 45:56] = np.nan
    assert tie_knot(model, (50, 50), knots) is None
