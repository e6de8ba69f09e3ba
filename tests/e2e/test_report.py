"""The report: figures and tables of the demo run, and one self-contained HTML report."""

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from workflow_runs import run_snakemake, write_small_run

from brightstamps.stampsfile import read_stamps

EXPOSURES = [f"demo_det{i}" for i in range(4)]
FIGURES = [f"results/plots/{e}_stamps.png" for e in EXPOSURES] + [
    "results/plots/r_extended_psf.png",
    "results/plots/r_psf_profile.png",
    "results/plots/r_profile.png",
    "results/plots/r_star_fits.png",
    "results/plots/r_annular_flux.png",
]
STAR_COLUMNS = [
    "exposure",
    "detector",
    "gaia_id",
    "g_mag",
    "annular_flux",
    "valid_annulus_fraction",
    "norm_status",
    "region",
    "used_in_stack",
]


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_is_a_real_image(demo_run, figure):
    img = mpimg.imread(demo_run / figure)
    assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 500
    assert np.ptp(img[..., :3]) > 0.5  # not one flat colour
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 50  # a plot, not a blank with a line


def _plot_job_inputs(proc):
    """The input line of the dry run's plot_extended_psf job."""
    text = proc.stdout + proc.stderr
    job = text[text.index("rule plot_extended_psf:") :]
    return next(line for line in job.splitlines() if line.strip().startswith("input:"))


def test_the_profile_figure_is_given_the_true_psf_only_on_the_demo(demo_run, tmp_path):
    """Rule plot_extended_psf reads the simulator's truth.fits when the band's exposures are the
    demo's (rule simulate_demo's), and not for other exposures."""
    target = "results/plots/r_psf_profile.png"
    demo = run_snakemake(demo_run, "-n", "--forcerun", "plot_extended_psf", target)
    assert "resources/demo/truth.fits" in _plot_job_inputs(demo)
    config = write_small_run(tmp_path, [{"name": "e", "detector": 0, "yaw": 0.0, "size": 300, "stars": []}])
    other = run_snakemake(tmp_path, "-n", target, configfile=config)
    inputs = _plot_job_inputs(other)
    assert "results/extended_psf/r.fits" in inputs and "truth" not in inputs


def test_stars_table_has_one_row_per_star_and_its_outcome(demo_run):
    table = pd.read_csv(demo_run / "results" / "plots" / "r_stars.tsv", sep="\t")
    assert list(table.columns) == [*STAR_COLUMNS, "amplitude", "reduced_chi2", "fit_ok"]  # psf_fit mode
    stamps = {e: read_stamps(demo_run / "results" / e / "bright_star_stamps.fits") for e in EXPOSURES}
    assert len(table) == sum(len(s) for s in stamps.values())
    for e, s in stamps.items():
        rows = table[table["exposure"] == e]
        assert list(rows["gaia_id"]) == [int(g) for g in s.stars["gaia_id"]]
        assert list(rows["norm_status"]) == list(s.stars["norm_status"])
    failed = table["norm_status"] != "ok"
    assert table["annular_flux"][failed].isna().all()
    # psf_fit fits every star, those whose annulus normalization failed too (faint field stars);
    # all are used but the four centred off their detectors
    assert failed.sum() >= 20 and table["used_in_stack"][failed].sum() >= failed.sum() - 4
    assert table["used_in_stack"].sum() == len(table) - 4 and table["fit_ok"].sum() == len(table) - 4


def test_software_versions(demo_run, repo):
    versions = pd.read_csv(demo_run / "results" / "report" / "versions.tsv", sep="\t", dtype=str)
    assert list(versions["package"]) == [
        "python",
        "brightstamps",
        "numpy",
        "scipy",
        "astropy",
        "pandas",
        "snakemake",
        "matplotlib",
    ]
    pins = dict(
        line.split("==")
        for line in (repo / "envs" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert versions.set_index("package").loc["matplotlib", "version"] == pins["matplotlib"]


def test_html_report_is_self_contained_and_complete(demo_run):
    path = demo_run / "report.html"
    run_snakemake(demo_run, "--report", str(path))
    html = path.read_text()
    for figure in FIGURES:
        name = figure.rsplit("/", 1)[1]
        assert f"data:image/png;charset=utf8;filename={name};base64," in html, name
    for table in ("r_stars.tsv", "versions.tsv"):
        assert f"filename={table};base64," in html, table
    assert '<script src="http' not in html and '<link href="http' not in html  # nothing fetched
    for caption in (
        "Normalized bright-star stamps of exposure",
        "Extended PSF of band",
        "Profile and dynamic range of the extended PSF of band",
        "Radial profiles of the extended PSF of band",
        "PSF fits of the stars of band",
        "Brightness of the stars of band",
        "Every star of band",
        "Versions of Python",
    ):
        assert caption in html, caption
    for category in ("Stamps", "Extended PSF", "Stars", "Software"):
        assert f'"{category}"' in html, category
    # the workflow description, with the configuration rendered from the run's config
    assert "five steps" in html and "annular_flux_radii: [70, 80]" in html
