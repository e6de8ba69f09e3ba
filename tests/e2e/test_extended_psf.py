"""The extended PSF on the simulated demo: equal to the true PSF, spikes aligned, psf_fit agreeing."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from science import radial_profile, radius_map, ring_angle_of_maximum, truth_annular_flux
from workflow_runs import run_snakemake

from brightstamps.stack import read_extended_psf

EDGES = np.array([12, 16, 20, 25, 30, 40, 50, 60, 70, 80])  # 3 FWHM (FWHM = 4 px) to the annulus


@pytest.fixture(scope="module")
def truth(demo_run):
    psf = fits.getdata(demo_run / "resources" / "demo" / "truth.fits", "PSF")
    stars = Table.read(demo_run / "resources" / "demo" / "truth.fits", "STARS")
    return psf / truth_annular_flux(psf, 70, 80), stars


@pytest.fixture(scope="module")
def psf_fit_run(demo_run, tmp_path_factory):
    """The demo run again with normalization: psf_fit (only the stack and its figures rerun)."""
    run = tmp_path_factory.mktemp("psf_fit") / "run"
    shutil.copytree(demo_run, run, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    config = run / "config" / "config.yaml"
    assert "\nnormalization: annulus" in config.read_text()
    config.write_text(config.read_text().replace("\nnormalization: annulus", "\nnormalization: psf_fit"))
    proc = run_snakemake(run, "--printshellcmds")
    assert "rule stack_extended_psf" in proc.stdout + proc.stderr
    assert "rule warping" not in proc.stdout + proc.stderr  # per-exposure steps are not redone
    return run


def test_one_model_per_region_with_its_provenance(demo_run):
    models, stars, inputs, header = read_extended_psf(demo_run / "results" / "extended_psf" / "r.fits")
    assert list(models) == ["DEFAULT"] and header["BAND"] == "r" and header["NORMMODE"] == "annulus"
    m = models["DEFAULT"]
    assert m["detectors"] == [0, 1, 2, 3] and m["nstars"] == stars["used"].sum() >= 16
    assert len(inputs) == 4 and all(len(h) == 16 for h in inputs["confhash"])
    assert m["image"].shape == (275, 275) and m["nstars"] - 4 <= m["n"].max() <= m["nstars"]


def test_extended_psf_equals_the_true_psf(demo_run, truth):
    psf, _ = truth
    m = read_extended_psf(demo_run / "results" / "extended_psf" / "r.fits")[0]["DEFAULT"]
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    ratio = radial_profile(m["image"], good, EDGES) / radial_profile(psf, good, EDGES)
    assert np.all(np.abs(ratio - 1) <= 0.01), ratio
    # beyond the annulus: consistent with the truth within the stack's own noise
    r = radius_map(psf.shape)
    outer = good & (r > 80) & (r < 125) & (m["n"] > 1)
    chi = (m["image"] - psf)[outer] / np.sqrt(m["variance"][outer])
    assert abs(np.median(chi)) < 0.2
    assert 1.4826 * np.median(np.abs(chi - np.median(chi))) == pytest.approx(1.0, abs=0.2)


def test_spikes_stack_into_one_sharp_pattern(demo_run, truth):
    psf, _ = truth
    m = read_extended_psf(demo_run / "results" / "extended_psf" / "r.fits")[0]["DEFAULT"]
    good = np.isfinite(m["image"]) & (m["n"] > 0)
    assert ring_angle_of_maximum(m["image"], good, r_in=20, r_out=50, step_deg=5) == pytest.approx(
        32.5, abs=5
    )
    # the spikes are as sharp as the truth's: no smeared or rotated copy (residuals are noise)
    r = radius_map(psf.shape)
    ring = good & (r > 15) & (r < 60) & (m["n"] > 1)
    chi = (m["image"] - psf)[ring] / np.sqrt(m["variance"][ring])
    assert np.mean(chi**2) < 2  # a copy turned by 90 degrees would give hundreds
    spike = ring & (psf > 3 * np.median(psf[ring]))  # pixels on the spikes
    assert spike.sum() > 50
    assert np.median(m["image"][spike] / psf[spike]) == pytest.approx(1.0, abs=0.02)


def test_psf_fit_agrees_with_the_annulus_mode_and_finds_the_true_fluxes(demo_run, psf_fit_run, truth):
    psf, true_stars = truth
    annulus = read_extended_psf(demo_run / "results" / "extended_psf" / "r.fits")[0]["DEFAULT"]
    models, stars, _, header = read_extended_psf(psf_fit_run / "results" / "extended_psf" / "r.fits")
    fitted = models["DEFAULT"]
    assert header["NORMMODE"] == "psf_fit"
    good = np.isfinite(fitted["image"]) & np.isfinite(annulus["image"])
    ann = (radius_map(psf.shape) > 70) & (radius_map(psf.shape) <= 80) & good
    scaled = fitted["image"] * np.mean(annulus["image"][ann]) / np.mean(fitted["image"][ann])
    ratio = radial_profile(scaled, good, EDGES) / radial_profile(annulus["image"], good, EDGES)
    assert np.all(np.abs(ratio - 1) <= 0.01), ratio
    used = stars[stars["used"]]
    assert len(used) >= 16 and np.all(used["fit_ok"]) and np.all(used["dof"] > 1000)
    flux = np.array([true_stars[true_stars["source_id"] == g]["flux_adu"][0] for g in used["gaia_id"]])
    saturated = np.array([true_stars[true_stars["source_id"] == g]["saturated"][0] for g in used["gaia_id"]])
    assert saturated.sum() >= 12  # the saturated stars are fitted too: their wings carry the fit
    k = used["amplitude"] / flux
    assert np.all(np.abs(k / np.median(k) - 1) <= 0.01), k / np.median(k)
    assert np.all(np.isfinite(used["reduced_chi2"])) and np.all(np.isfinite(used["bkg_x0y0"]))
