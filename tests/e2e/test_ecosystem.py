"""Snakemake conventions: lint, summaries on a finished run, and the workflow used as a module."""

import sys
import subprocess

from brightstamps.stampsfile import read_stamps
from workflow_runs import run_snakemake, write_small_run


def test_lint_reports_nothing(repo):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_summaries_on_a_finished_run(demo_run):
    for flag in ("--summary", "--detailed-summary"):
        out = run_snakemake(demo_run, flag).stdout
        assert "results/demo_det0/bright_star_stamps.fits" in out
        assert "ok" in out  # every file up to date


def test_deployed_as_a_module_with_its_own_config(tmp_path, repo):
    """The snakedeploy layout: a Snakefile of one's own that uses brightstamps as a module."""
    exposures = [{"name": "m1", "detector": 2, "yaw": 180.0, "size": 300, "stars": [(140.2, 160.7, 11.0)]}]
    write_small_run(tmp_path, exposures)
    (tmp_path / "config").mkdir()
    (tmp_path / "config.yaml").rename(tmp_path / "config" / "config.yaml")
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config/config.yaml"\n\n\n'
        f'module brightstamps:\n    snakefile:\n        "{repo / "Snakefile"}"\n    config:\n        config\n\n\n'
        f"use rule * from brightstamps\n"
    )
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stamps = read_stamps(tmp_path / "results" / "m1" / "bright_star_stamps.fits")
    assert stamps.stars["norm_status"][0] == "ok"
    assert (tmp_path / "results" / "extended_psf" / "r.fits").is_file()
