"""Snakemake conventions: lint, summaries on a finished run, and the workflow used as a module."""

import subprocess
import sys

from workflow_runs import run_snakemake, write_small_run

from brightstamps.stampsfile import read_stamps


def test_lint_reports_nothing(repo):
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 0
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr


def test_summaries_on_a_finished_run(demo_run):
    """Both list every file the run wrote, once, each up to date."""
    files = sorted(
        str(p.relative_to(demo_run))
        for top in ("results", "resources")
        for p in (demo_run / top).rglob("*")
        if p.is_file()
    )
    assert "results/demo_det0/bright_star_stamps.fits" in files
    for flag, columns in (
        ("--summary", ["output_file", "date", "rule", "log-file(s)", "status", "plan"]),
        (
            "--detailed-summary",
            ["output_file", "date", "rule", "log-file(s)", "input-file(s)", "shellcmd", "status", "plan"],
        ),
    ):
        lines = run_snakemake(demo_run, flag).stdout.splitlines()
        rows = [
            dict(zip(columns, line.split("\t"), strict=True))
            for line in lines[lines.index("\t".join(columns)) + 1 :]
        ]
        assert sorted(r["output_file"] for r in rows) == files, flag
        assert {(r["status"], r["plan"]) for r in rows} == {("ok", "no update")}, flag


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
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stamps = read_stamps(tmp_path / "results" / "m1" / "bright_star_stamps.fits")
    assert stamps.stars["norm_status"][0] == "ok"
    assert (tmp_path / "results" / "extended_psf" / "r.fits").is_file()
