"""`make bench`: time the five steps on the demo data, the warp per stamp, and each rule's memory.

Runs the default workflow in ``bench/run`` (all jobs forced), reads Snakemake's ``benchmark:``
files, times the warp kernel in this process, prints a table and writes ``bench/results.json``.
Figures are medians over repeats; compare ratios, not absolute seconds, on a shared machine.
"""

import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
STEPS = ["sky_correction", "catalog_matching", "stamp_extraction", "warping", "normalization", "stack_extended_psf",
         "plot_stamps", "plot_extended_psf"]


def _run_workflow(run):
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    shutil.copytree(REPO / "config", run / "config")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "1", "--directory", str(run),
           "--quiet", "all"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=run)
    return time.perf_counter() - start


def _read_benchmarks(run):
    """Seconds from Snakemake's benchmark files, peak memory from each job's own log line
    (Snakemake samples memory too rarely to see jobs of a second)."""
    rows = {}
    for step in STEPS:
        for path in sorted((run / "benchmarks" / step).glob("*.tsv")):  # per exposure, or per band
            with open(path) as f:
                rec = next(csv.DictReader(f, delimiter="\t"))
            log = (run / "logs" / step / f"{path.stem}.log").read_text()
            peak = float(log.rsplit("peak memory ", 1)[1].split()[0])
            rows.setdefault(step, []).append({"s": float(rec["s"]), "max_rss_mb": peak})
    return rows


def _time_warp(kernel, repeats=15):
    from brightstamps.warp import warp_cutout

    rng = np.random.default_rng(0)
    img = rng.normal(size=(250, 250)).astype(np.float32)
    var = np.ones((250, 250), np.float32)
    msk = np.zeros((250, 250), np.int32)
    affine = np.array([[1.002, 0.003], [-0.002, 0.998]])
    quad = np.array([[1e-6, -2e-6, 5e-7], [3e-7, 1e-6, -1e-6]])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        warp_cutout(img, msk, var, center=(125.3, 124.7), affine=affine, quadratic=quad, out_shape=(275, 275),
                    kernel=kernel, no_data_bit=256)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    from brightstamps.stampsfile import read_stamps

    out = REPO / "bench"
    run = out / "run"
    total = _run_workflow(run)
    bench = _read_benchmarks(run)
    nstamps = {p.parent.name: len(read_stamps(p)) for p in sorted((run / "results").glob("*/bright_star_stamps.fits"))}
    warp_per_stamp = [r["s"] / n for r, n in zip(bench["warping"], nstamps.values(), strict=True) if n]
    kernels = {k: _time_warp(k) for k in ("bilinear", "lanczos3", "lanczos5")}
    results = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%d"),
        "exposures": len(nstamps),
        "stamps": int(sum(nstamps.values())),
        "workflow_wall_s": total,
        "steps": {s: {"median_s": statistics.median(r["s"] for r in rows),
                      "max_rss_mb": max(r["max_rss_mb"] for r in rows)} for s, rows in bench.items()},
        "warp_step_s_per_stamp_median": statistics.median(warp_per_stamp),
        "warp_kernel_ms_per_stamp": {k: v * 1e3 for k, v in kernels.items()},
    }
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"brightstamps bench on {results['machine']['cores']} cores, {results['date']}: "
          f"{results['exposures']} demo exposures, {results['stamps']} stamps, workflow {total:.1f} s (1 core)")
    print(f"{'rule':<20}{'median s/job':>14}{'peak RSS MB':>14}")
    for step in STEPS:
        r = results["steps"][step]
        print(f"{step:<20}{r['median_s']:>14.2f}{r['max_rss_mb']:>14.0f}")
    print(f"warping step, per stamp (I/O included): {results['warp_step_s_per_stamp_median'] * 1e3:.0f} ms")
    for k, v in results["warp_kernel_ms_per_stamp"].items():
        print(f"warp kernel {k:<9} 250x250 -> 275x275, image+mask+variance: {v:.1f} ms/stamp")
    print(f"written: {out / 'results.json'}")


if __name__ == "__main__" and len(sys.argv) == 1:
    main()


def stack_memory(n_stamps, *, per_file=250, memory_mb=1000):
    """Peak memory of stacking *n_stamps* 275 x 275 stamps (written to bench/stack/ first)."""
    import resource

    from astropy.table import Table

    from brightstamps.masks import LSST_BAD_MASK_PLANES, LSST_MASK_PLANES
    from brightstamps.stack import stack_stamps
    from brightstamps.stampsfile import Stamps, write_stamps

    out = REPO / "bench" / "stack"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:275, 0:275]
    psf = (1.0 / (1 + ((xx - 137) ** 2 + (yy - 137) ** 2) / 25.0) ** 1.5).astype(np.float32)
    paths = []
    for i in range(0, n_stamps, per_file):
        n = min(per_file, n_stamps - i)
        path = out / f"stamps_{i // per_file:04d}.fits"
        if not path.exists():
            images = psf + rng.normal(scale=0.01, size=(n, 275, 275)).astype(np.float32)
            stars = Table({"gaia_id": np.arange(i, i + n, dtype=np.int64), "g_mag": np.full(n, 8.0),
                           "annular_flux": np.ones(n), "valid_annulus_fraction": np.ones(n)})
            header = {"EXPOSURE": f"e{i}", "DETECTOR": 0, "NORMED": True, "CENTERX": 137, "CENTERY": 137}
            write_stamps(path, Stamps(images, np.zeros((n, 275, 275), np.int32), np.ones((n, 275, 275), np.float32),
                                      stars, dict(LSST_MASK_PLANES), header))
            del images
        paths.append(str(path))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    models, _ = stack_stamps(paths, regions={}, normalization="annulus", statistic="MEANCLIP", num_sigma_clip=4,
                             num_iter=3, bad_mask_planes=list(LSST_BAD_MASK_PLANES), min_valid_annulus_fraction=0.0,
                             mag_limit=None, include_failed=False, psf_fit={}, memory_mb=memory_mb)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    err = np.nanmax(np.abs(models["DEFAULT"]["image"] - psf))
    print(f"stacked {n_stamps} stamps of 275x275 in {seconds:.0f} s; peak RSS {peak:.0f} MB "
          f"(before the stack {before:.0f} MB; budget memory_mb={memory_mb}); max |stack - truth| = {err:.4f}")


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "stack-memory":
    stack_memory(int(sys.argv[2]))


# Snakemake stats the inputs of every ready job each time it selects jobs, which makes a run with
# thousands of ready jobs quadratic (0.1 jobs/s at 500 exposures); a random subsample of the ready
# jobs keeps each selection short and does not change any output.
SCHEDULER_SUBSAMPLE = 50


def load(n_exposures, cores=2):
    """Run the workflow over *n_exposures* small simulated exposures; report failures and memory.

    Memory is followed per job (each job's log records its peak) in the order the jobs ran, and for
    the Snakemake process itself (sampled every second), to show it stays flat.
    """
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from conftest import SNAKEFILE, write_small_run

    run = REPO / "bench" / "load"
    if run.exists():
        shutil.rmtree(run)
    exposures = [{"name": f"x{i:04d}", "detector": i % 4, "yaw": 90.0 * (i % 4), "size": 300,
                  "stars": [(150.3, 149.6, 11.0)]} for i in range(n_exposures)]
    config = write_small_run(run, exposures)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", str(cores), "--directory", str(run),
           "--configfile", str(config), "--quiet", "all", "--scheduler-subsample", str(SCHEDULER_SUBSAMPLE)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            samples.append((time.perf_counter() - start, int(status.split("VmRSS:")[1].split()[0]) / 1024))
        except (FileNotFoundError, IndexError):
            pass
        time.sleep(1.0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read()
    logs = sorted((run / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
    peaks = [float(p.read_text().rsplit("peak memory ", 1)[1].split()[0]) for p in logs if "peak memory" in p.read_text()]
    done = len(list((run / "results").glob("*/bright_star_stamps.fits")))
    third = max(1, len(peaks) // 3)
    rss = [m for _, m in samples]
    print(f"{n_exposures} exposures, {cores} cores: exit {proc.returncode}, {done} products, {seconds:.0f} s; "
          f"job peaks {min(peaks):.0f}-{max(peaks):.0f} MB (first third median {statistics.median(peaks[:third]):.0f}, "
          f"last third {statistics.median(peaks[-third:]):.0f}); snakemake RSS first/last/max "
          f"{rss[0]:.0f}/{rss[-1]:.0f}/{max(rss):.0f} MB")
    if proc.returncode:
        print(err[-3000:])


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "load":
    load(int(sys.argv[2]))
