"""Reliability: a killed run resumes to the same bytes, config changes rerun only what they touch,
and a full disk leaves no partial file."""

import base64
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from workflow_runs import run_snakemake, write_small_run

PRODUCTS = [f"results/demo_det{d}/bright_star_stamps.fits" for d in range(4)] + [
    "results/extended_psf/r.fits"
]


def _files(root):
    return {p.relative_to(root): p for p in root.rglob("*") if p.is_file()}


def test_killed_run_resumes_without_redoing_finished_work(demo_run, tmp_path, repo):
    run = tmp_path / "killed"
    run.mkdir()
    shutil.copytree(repo / "config", run / "config")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(repo / "Snakefile"), "--cores", "1"]
    proc = subprocess.Popen(
        cmd, cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        # finished files only: a job's temporary file (".name.tmpPID...") is not one
        done = (
            [p for p in (run / "results").glob("demo_det*/*.*") if ".tmp" not in p.name]
            if (run / "results").exists()
            else []
        )
        if len(done) >= 6:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the job it was running
    proc.wait()
    before = {
        p: p.stat().st_mtime_ns for p in (run / "results").rglob("*") if p.is_file() and ".tmp" not in p.name
    }
    assert 6 <= len(before) < 30  # killed in the middle
    # files of a job Snakemake had not yet marked complete: redone (--rerun-incomplete)
    markers = run / ".snakemake" / "incomplete"
    flagged = (
        {run / base64.b64decode(m.name).decode() for m in markers.iterdir()} if markers.exists() else set()
    )
    # as after any kill: remove the stale lock, then run again
    run_snakemake(run, "--unlock")
    run_snakemake(run, "--rerun-incomplete")
    for path, mtime in before.items():
        if path not in flagged:
            assert path.stat().st_mtime_ns == mtime, f"{path} was redone"
    for name in PRODUCTS:
        assert (run / name).read_bytes() == (demo_run / name).read_bytes(), name
    # a job killed while writing left only its hidden temporary file, removed when the job reran
    assert not [p for p in (run / "results").rglob("*") if ".tmp" in p.name]


def _dry_run_rules(run):
    """The rules a dry run would execute, with their job counts."""
    out = run_snakemake(run, "-n").stdout
    table = out.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    return {name: int(count) for name, count in rows}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "warping_kernel: lanczos5",
            "warping_kernel: lanczos3",
            {"warping": 4, "normalization": 4, "stack_extended_psf": 1},
        ),
        (
            "annular_flux_radii: [70, 80]",
            "annular_flux_radii: [60, 80]",
            {"normalization": 4, "stack_extended_psf": 1},
        ),
        ("normalization: psf_fit", "normalization: annulus", {"stack_extended_psf": 1}),
    ],
)
def test_a_config_change_reruns_its_step_and_the_ones_after_it_only(demo_run, tmp_path, old, new, expected):
    run = tmp_path / "run"
    shutil.copytree(demo_run, run, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    config = run / "config" / "config.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))
    rules = _dry_run_rules(run)
    plots = {"plot_stamps", "plot_extended_psf", "stars_table", "all"}
    assert {k: v for k, v in rules.items() if k not in plots} == expected
    untouched = {"simulate_demo", "sky_correction", "catalog_matching", "stamp_extraction"} - set(expected)
    assert not untouched & set(rules)


def _mount_small_disk(path, size_kb):
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


def test_full_disk_leaves_no_partial_file_and_a_rerun_completes(tmp_path, repo):
    exposures = [{"name": "e1", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(150.3, 149.6, 11.0)]}]
    config = write_small_run(tmp_path, exposures)
    results = tmp_path / "results"
    if _mount_small_disk(results, 96):  # room for the first steps' files, not for all of them
        try:
            proc = run_snakemake(tmp_path, configfile=config, check=False)
            assert proc.returncode != 0
            assert "No space left on device" in proc.stdout + proc.stderr
            names = [p.name for p in results.rglob("*") if p.is_file()]
            assert names and not any(".tmp" in n for n in names), names
            assert "bright_star_stamps.fits" not in names
            # free space (a bigger disk, same files) and run again
            subprocess.run(["mount", "-o", "remount,size=50m", str(results)], check=True)
            run_snakemake(tmp_path, configfile=config)
            assert (results / "e1" / "bright_star_stamps.fits").is_file()
        finally:
            subprocess.run(["umount", str(results)], check=False)
    else:  # no permission to mount: the same failure, a write past a file-size limit
        cmd = (
            f"ulimit -f 40; exec {sys.executable} -m snakemake -s {repo / 'Snakefile'} --cores 1 "
            f"--directory {tmp_path} --configfile {config}"
        )
        proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode != 0
        names = [p.name for p in results.rglob("*") if p.is_file()]
        assert not any(".tmp" in n for n in names), names
        run_snakemake(tmp_path, configfile=config)
        assert (results / "e1" / "bright_star_stamps.fits").is_file()
