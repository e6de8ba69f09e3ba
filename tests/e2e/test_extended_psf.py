"""The extended PSF on the simulated demo (a real field's magnitudes): the true PSF, core to wings.

The demo's four detectors have four yaws; most of their stars are faint and unsaturated, a few are
saturated. The default (psf_fit, inverse-variance weighted) model must equal the simulator's true
PSF from the central pixel to the stamp's edge, with honest errors and the stars' true fluxes; so
must the radially oriented run and each detector's own model. LSST's legacy settings stay
reachable and give the legacy model.
"""

import shutil

import numpy as np
import pytest
from astropy.table import Table
from science import radial_profile, radius_map, ring_angle_of_maximum, truth_annular_flux
from workflow_runs import run_snakemake

from brightstamps.profile import azimuthal_profile, flux_within, on_grid, table_edges
from brightstamps.simulate import read_true_psf
from brightstamps.stack import read_extended_psf

CENTER = (137, 137)


def _variant(demo_run, tmp_path_factory, name, replacements, expect_rules=("stack_extended_psf",)):
    """The demo run again with its config changed: only the steps the change reaches rerun."""
    run = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(demo_run, run, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    config = run / "config" / "config.yaml"
    text = config.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    proc = run_snakemake(run, "--printshellcmds")
    for rule in expect_rules:
        assert f"rule {rule}" in proc.stdout + proc.stderr
    return run


@pytest.fixture(scope="module")
def truth(demo_run):
    image, center = read_true_psf(demo_run / "resources" / "demo" / "truth.fits")
    stars = Table.read(demo_run / "resources" / "demo" / "truth.fits", "STARS")
    return on_grid(image, center, (275, 275), CENTER), stars


@pytest.fixture(scope="module")
def radial_run(demo_run, tmp_path_factory):
    return _variant(
        demo_run,
        tmp_path_factory,
        "radial",
        [("\norientation: quarter_turns", "\norientation: radial")],
        expect_rules=("warping", "stack_extended_psf"),
    )


@pytest.fixture(scope="module")
def per_detector_run(demo_run, tmp_path_factory):
    return _variant(
        demo_run,
        tmp_path_factory,
        "regions",
        [("\nregions: {}", "\nregions: {D0: [0], D1: [1], D2: [2], D3: [3]}")],
    )


@pytest.fixture(scope="module")
def legacy_run(demo_run, tmp_path_factory):
    """LSST legacy: annulus normalization, unweighted MEANCLIP, the stars brighter than G = 10."""
    return _variant(
        demo_run,
        tmp_path_factory,
        "legacy",
        [
            ("\nnormalization: psf_fit", "\nnormalization: annulus"),
            ("  weighting: inverse_variance", "  weighting: none\n  do_mag_cut: true\n  mag_limit: 10.0"),
        ],
    )


def _model(run):
    models, stars, inputs, header = read_extended_psf(run / "results" / "extended_psf" / "r.fits")
    return models, stars, header


# Within these of the true PSF, per PROFILE bin, up to each radius: issue 15's 1 % to 80 px and 2 %
# to 100 px, except between 3.5 and 10.5 px, where the Lanczos-5 resampling of the core leaves
# +-2 % in any stack (the same stack with the true amplitudes has it, and a pure Lanczos-5 shift
# of the simulator's PSF reproduces it: it belongs to the warp). The unit tests on unresampled
# stamps hold 1 % there too.
TOLERANCES = ((3.5, 0.01), (10.5, 0.025), (80.0, 0.01), (100.0, 0.02))


def _assert_equals_truth(m, truth_psf, header, *, scale=1.0, sigmas=0.0):
    """Every PROFILE bin within TOLERANCES (times *scale*, or *sigmas* of its stated error if more)
    of the truth, the central pixel within 1 %."""
    assert m["normalization"] == "flux" and m["converged"]
    truth = truth_psf / flux_within(truth_psf, float(header["FLUXRAD"]), center=CENTER)
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    profile = m["profile"]
    edges = table_edges(profile)
    ratio = azimuthal_profile(m["image"], center=CENTER, edges=edges, good=good) / azimuthal_profile(
        truth, center=CENTER, edges=edges, good=good
    )
    limit = np.full(len(ratio), np.nan)
    for radius, tolerance in reversed(TOLERANCES):
        limit[profile["r_out"] <= radius + 1e-9] = tolerance * scale
    limit = np.maximum(limit, sigmas * np.asarray(profile["error"]) / np.abs(np.asarray(profile["value"])))
    keep = np.isfinite(limit)
    bad = keep & ~(np.abs(ratio - 1) <= limit)
    assert not bad.any(), dict(
        zip(np.round(profile["r_in"][keep], 1), np.round(ratio[keep] - 1, 4), strict=True)
    )
    assert np.isfinite(m["image"][CENTER[::-1]]) and m["image"][CENTER[::-1]] == pytest.approx(
        truth[CENTER[::-1]], rel=0.01 * scale
    )
    return truth


def test_one_model_per_region_with_its_provenance(demo_run):
    models, stars, header = _model(demo_run)
    assert list(models) == ["DEFAULT"] and header["BAND"] == "r" and header["NORMMODE"] == "psf_fit"
    assert header["WEIGHTNG"] == "inverse_variance" and header["FLUXRAD"] == 50
    m = models["DEFAULT"]
    assert m["detectors"] == [0, 1, 2, 3] and m["nstars"] == stars["used"].sum()
    # every star with signal is used: all but the four whose centres lie off their detectors
    assert len(stars) - m["nstars"] == 4
    assert set(stars["stack_status"][~stars["used"]]) == {
        s for s in stars["stack_status"][~stars["used"]] if s.startswith("fit rejected: masked flux fraction")
    }
    assert m["image"].shape == (275, 275) and m["n"].max() <= m["nstars"]


def test_the_model_is_the_true_psf_from_the_central_pixel_to_the_wings(demo_run, truth):
    models, _, header = _model(demo_run)
    m = models["DEFAULT"]
    truth_psf = _assert_equals_truth(m, truth[0], header)
    # the stated error is honest beyond the core
    r = radius_map(m["image"].shape)
    beyond = (r > 20) & (m["n"] > 0) & np.isfinite(m["image"])
    chi = (m["image"] - truth_psf)[beyond] / np.sqrt(m["variance"][beyond])
    assert np.std(chi) == pytest.approx(1.0, rel=0.2)
    assert m["dynamic_range"] > 5  # decades from the peak to where S/N falls to 1


def test_spikes_stack_into_one_sharp_pattern(demo_run, truth):
    m = _model(demo_run)[0]["DEFAULT"]
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    assert ring_angle_of_maximum(m["image"], good, r_in=20, r_out=50, step_deg=5) == pytest.approx(
        32.5, abs=5
    )


def test_amplitudes_are_the_true_fluxes_saturated_stars_included(demo_run, truth):
    _, true_stars = truth
    stars = _model(demo_run)[1]
    used = stars[stars["used"]]
    lookup = {int(s): i for i, s in enumerate(true_stars["source_id"])}
    rows = [lookup[int(g)] for g in used["gaia_id"]]
    flux = np.asarray(true_stars["flux_adu"])[rows]
    saturated = np.asarray(true_stars["saturated"])[rows]
    k = np.asarray(used["amplitude"]) / flux
    rel_err = np.asarray(used["amplitude_err"]) / np.asarray(used["amplitude"])
    precise = rel_err < 0.0015
    assert (precise & saturated).sum() >= 16 and (precise & ~saturated).sum() >= 5
    k0 = np.median(k[precise & ~saturated])
    assert np.all(np.abs(k[precise & ~saturated] / k0 - 1) <= 0.005), np.round(k[precise] / k0 - 1, 4)
    assert np.all(np.abs(k[precise & saturated] / k0 - 1) <= 0.006), np.round(k[precise] / k0 - 1, 4)
    # the faint stars scatter as their stated errors say
    pull = (k[~precise] / k0 - 1) / rel_err[~precise]
    assert np.std(pull) == pytest.approx(1.0, abs=0.3)


@pytest.mark.xfail(
    strict=True,
    reason="issue 15, open: the simulator's spikes and ghost are fixed in the focal plane, so radially "
    "oriented stamps turn them star by star; the fits weight the spikes' pixels low and the saturated "
    "stars' amplitudes come out 35 % low against the smeared model (wings +53 %)",
)
def test_radially_oriented_stamps_give_the_true_psf_too(radial_run, truth):
    models, _, header = _model(radial_run)
    _assert_equals_truth(models["DEFAULT"], truth[0], header)


def test_each_detector_and_yaw_gives_the_true_psf(per_detector_run, truth):
    """One model per detector (yaws 0, 90, 180, 270): each from its own four saturated stars, so
    it is noisier: each bin within twice the tolerances or four of its stated errors (about 140
    bins in all: at three sigma, one in three runs of a right model would fail somewhere)."""
    models, _, header = _model(per_detector_run)
    assert list(models) == ["D0", "D1", "D2", "D3"]
    for m in models.values():
        _assert_equals_truth(m, truth[0], header, scale=2.0, sigmas=4.0)


def test_lsst_legacy_settings_give_the_annulus_normalized_model(legacy_run, truth):
    """annulus + unweighted MEANCLIP + G < 10: LSST's legacy model, normalized in the annulus; its
    core is a hole (the saturated stars), its wings the truth's."""
    models, stars, header = _model(legacy_run)
    m = models["DEFAULT"]
    assert (
        header["NORMMODE"] == "annulus" and header["WEIGHTNG"] == "none" and m["normalization"] == "annulus"
    )
    assert m["nstars"] == stars["used"].sum() >= 16 and np.all(stars["g_mag"][stars["used"]] < 10)
    psf = truth[0] / truth_annular_flux(truth[0], 70, 80)
    edges = np.array([12, 16, 20, 25, 30, 40, 50, 60, 70, 80])
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    ratio = radial_profile(m["image"], good, edges) / radial_profile(psf, good, edges)
    assert np.all(np.abs(ratio - 1) <= 0.01), ratio
    assert np.isnan(m["image"][CENTER[::-1]])
