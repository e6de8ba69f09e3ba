"""`make bench`: the performance figures of issue 6, each a median over repeats, in one run.

    python bench/bench.py [all]           # everything below; table on stdout, bench/results.json,
                                          # and the table into docs/performance.md
    python bench/bench.py render          # docs/performance.md's table again from bench/results.json
    python bench/bench.py warp            # 1. warp throughput per kernel, beside numpy and scipy
    python bench/bench.py grouping [N]    # 4b. N exposures through SLURM, grouped and not (root)
    python bench/bench.py stack-memory N  # peak memory of stacking N stamps
    python bench/bench.py load N          # N small exposures through the workflow, memory per job
    python bench/bench.py hats [N_ROWS]   # 6. per-exposure lookups in a partitioned catalog

(grouping and hats also put their result into bench/results.json when there is one.)

1. warp throughput per kernel (275 x 275 stamps from 250 x 250 cut-outs, image + variance +
   mask), beside a naive numpy Lanczos5 gather, the exact-weight vectorized numpy warp and
   scipy's map_coordinates (cubic, image only), measured in the same run;
2. one 4k x 4k simulated exposure with 300 bright stars through the five steps (one core):
   seconds and peak memory per step, and the start-up (imports, compiled-kernel cache) per job;
3. scaling with stars (30 / 300 / 3000 on 4k) and pixels (1k / 2k / 4k, 300 stars): marginal
   cost per star and per megapixel, which must not grow; and the per-star work alone (the three
   stamp steps in one process, without the start-up and exposure reading of every job);
4. workflow overhead: 200 small exposures with --cores 2, wall time against the sum of the
   jobs' own times (Snakemake's benchmark files), and the dry run of 10,000 exposures;
5. Gnuastro's astscript-psf-stamp on the same image, stars, stamp size and ring: seconds per
   stamp for both, and the agreement of the normalized profiles;
6. a HATS (HEALPix-partitioned Parquet) catalog of 10 million rows: seconds, partitions read
   and peak memory of one exposure's lookup, each in a fresh process.

Compare ratios, not absolute seconds: these machines are shared and noisy.
"""

import argparse
import contextlib
import csv
import io
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench"
STEPS = ["sky_correction", "catalog_matching", "stamp_extraction", "warping", "normalization"]
# this checkout's package, and the tests' helpers (warp_reference, hats_catalog, workflow_runs)
for _path in (REPO, REPO / "tests", REPO / "tests" / "e2e"):
    sys.path.insert(0, str(_path))

# Snakemake stats the inputs of every ready job each time it selects jobs, which makes a run with
# thousands of ready jobs quadratic (0.1 jobs/s at 500 exposures); a random subsample of the ready
# jobs keeps each selection short and does not change any output.
SCHEDULER_SUBSAMPLE = 50


def _median_time(fn, repeats):
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# 1. warp throughput


def bench_warp(repeats=21):
    """Milliseconds per 275 x 275 stamp for each implementation, on one cut-out with a distortion."""
    from scipy.ndimage import map_coordinates
    from warp_reference import warp_cutout_exact, warp_cutout_naive

    from brightstamps.warp import warp_cutout

    rng = np.random.default_rng(0)
    img = rng.normal(size=(250, 250)).astype(np.float32)
    var = np.ones((250, 250), np.float32)
    msk = np.zeros((250, 250), np.int32)
    affine = np.array([[1.002, 0.003], [-0.002, 0.998]])
    quad = np.array([[1e-6, -2e-6, 5e-7], [3e-7, 1e-6, -1e-6]])
    center = (125.3, 124.7)
    same = {
        "center": center,
        "affine": affine,
        "quadratic": quad,
        "out_shape": (275, 275),
        "no_data_bit": 256,
    }
    ms = {}
    for kernel in ("bilinear", "lanczos3", "lanczos5"):
        ms[kernel] = 1e3 * _median_time(
            lambda k=kernel: warp_cutout(img, msk, var, kernel=k, **same), repeats
        )
    ms["numpy_exact_lanczos5"] = 1e3 * _median_time(
        lambda: warp_cutout_exact(img, msk, var, kernel="lanczos5", **same), max(3, repeats // 4)
    )
    ms["numpy_naive_lanczos5"] = 1e3 * _median_time(
        lambda: warp_cutout_naive(img, var, center=center, affine=affine, out_shape=(275, 275)),
        max(3, repeats // 4),
    )
    jj, ii = np.mgrid[0:275, 0:275]
    d = np.stack([(ii - 137).ravel(), (jj - 137).ravel()]).astype(np.float64)
    coords = (np.asarray(center)[:, None] + affine @ d)[::-1]  # (row, col)
    ms["scipy_map_coordinates_cubic_image_only"] = 1e3 * _median_time(
        lambda: map_coordinates(img, coords, order=3, mode="constant", cval=np.nan), repeats
    )
    return {
        "ms_per_stamp": ms,
        "stamps_per_s_per_core": {k: 1e3 / v for k, v in ms.items()},
        "speedup_lanczos5_vs": {k: v / ms["lanczos5"] for k, v in ms.items() if k != "lanczos5"},
    }


# ---------------------------------------------------------------------------------------------
# 2 and 3. one exposure through the five steps


def _simulated_run(run, *, size, n_stars, seed=1, config=None):
    """A run directory with one size x size exposure and *n_stars* stars of G = 9-13."""
    from workflow_runs import write_small_run

    if (run / "config.yaml").exists():
        return run / "config.yaml"
    rng = np.random.default_rng(seed)
    stars = list(
        zip(
            rng.uniform(0, size, n_stars),
            rng.uniform(0, size, n_stars),
            rng.uniform(9, 13, n_stars),
            strict=True,
        )
    )
    cfg = {"stamp_size": [250, 250], "annular_flux_radii": [70, 80]}
    cfg.update(config or {})
    return write_small_run(
        run, [{"name": "x", "detector": 0, "yaw": 0.0, "size": size, "stars": stars}], config=cfg
    )


def _snakemake_cmd(run, config, *targets, cores=1, extra=()):
    return [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "-s",
        str(REPO / "Snakefile"),
        "--cores",
        str(cores),
        "--directory",
        str(run),
        "--configfile",
        str(config),
        "--quiet",
        "all",
        *extra,
    ]


def _snakemake(run, config, *targets, cores=1, extra=()):
    """Run the workflow quietly; return its wall time in seconds."""
    start = time.perf_counter()
    subprocess.run(
        _snakemake_cmd(run, config, *targets, cores=cores, extra=extra),
        check=True,
        cwd=run,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _job_record(run, step, name):
    with open(run / "benchmarks" / step / f"{name}.tsv") as f:
        rec = next(csv.DictReader(f, delimiter="\t"))
    log = (run / "logs" / step / f"{name}.log").read_text()
    # each job logs its own peak RSS (Snakemake samples memory too rarely for jobs of a second)
    return {"s": float(rec["s"]), "max_rss_mb": float(log.rsplit("peak memory ", 1)[1].split()[0])}


def five_steps(run, *, size, n_stars, repeats=1, config=None):
    """Seconds and peak memory per step of one exposure (median over *repeats* forced reruns)."""
    cfg = _simulated_run(run, size=size, n_stars=n_stars, config=config)
    rows = {s: [] for s in STEPS}
    for i in range(repeats):
        extra = ["--forcerun", *STEPS] if i or (run / "results").exists() else []
        _snakemake(run, cfg, "results/x/bright_star_stamps.fits", extra=extra)
        for s in STEPS:
            rows[s].append(_job_record(run, s, "x"))
    steps = {
        s: {"s": statistics.median(r["s"] for r in v), "max_rss_mb": max(r["max_rss_mb"] for r in v)}
        for s, v in rows.items()
    }
    return {
        "size": size,
        "stars": n_stars,
        "steps": steps,
        "total_s": sum(v["s"] for v in steps.values()),
        "max_rss_mb": max(v["max_rss_mb"] for v in steps.values()),
    }


def startup(repeats=5):
    """Seconds from a fresh interpreter to work starting: the imports of a step's script, and for
    the warping step (the heaviest: astropy.wcs, numba) loading the compiled kernel from cache."""
    warm = (
        "a=np.ones((60,60),np.float32); warp.warp_cutout(a, np.zeros((60,60),np.int32), a, center=(30.,30.), "
        "affine=np.eye(2), out_shape=(41,41), kernel='lanczos5', no_data_bit=256); "
    )
    steps = {
        "warping": "from brightstamps import exposure, stampsfile, warp; " + warm,
        "normalization": "from brightstamps import files, normalize, stampsfile; ",
    }
    result = {}
    for step, body in steps.items():
        code = (
            "import time; t=time.perf_counter(); import sys; sys.path.insert(0, 'scripts'); import numpy as np; "
            f"import _common; {body}print(time.perf_counter()-t)"
        )
        inside, total = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True, text=True
            )
            total.append(time.perf_counter() - t0)
            inside.append(float(out.stdout))
        result[step] = {
            "imports_s": statistics.median(inside),
            "with_interpreter_s": statistics.median(total),
        }
    return result


def scaling(repeats=3):
    """Five-step time against stars (4k) and against pixels (300 stars), medians of *repeats*."""
    by_stars = [
        five_steps(OUT / f"scale_4096_{n}", size=4096, n_stars=n, repeats=repeats) for n in (30, 300, 3000)
    ]
    by_size = [five_steps(OUT / f"scale_{s}_300", size=s, n_stars=300, repeats=repeats) for s in (1024, 2048)]
    by_size.append(by_stars[1])

    def stamp_steps(b):  # the steps whose work is per star
        return sum(b["steps"][s]["s"] for s in ("stamp_extraction", "warping", "normalization"))

    pairs = list(itertools.pairwise(by_stars))
    return {
        "by_stars": by_stars,
        "by_size": by_size,
        "marginal_s_per_star": [(b["total_s"] - a["total_s"]) / (b["stars"] - a["stars"]) for a, b in pairs],
        "marginal_s_per_star_stamp_steps": [
            (stamp_steps(b) - stamp_steps(a)) / (b["stars"] - a["stars"]) for a, b in pairs
        ],
        "marginal_s_per_mpix": [
            (b["total_s"] - a["total_s"]) / ((b["size"] ** 2 - a["size"] ** 2) / 1e6)
            for a, b in itertools.pairwise(by_size)
        ],
    }


def per_star_in_process(repeats=3):
    """The per-star work alone: the three stamp steps of the scaling runs (30 / 300 / 3000 stars on
    4k), each run in this process with its output written, without the job start-up and the
    reading of the exposure, which are the same for every star count and whose run-to-run spread
    (about 0.5 s a job) hides the cost of 270 stars in the Snakemake figures."""
    from brightstamps import catalog, exposure, extract, normalize, sky, stampsfile, warp
    from brightstamps.configref import schema_defaults
    from brightstamps.masks import LSST_BAD_MASK_PLANES

    work = OUT / "per_star"
    work.mkdir(exist_ok=True)
    files = {k: work / f"{k}.fits" for k in ("cutouts", "warped", "normalized")}
    warp.warp_cutout(
        np.ones((20, 20), np.float32),
        np.zeros((20, 20), np.int32),
        np.ones((20, 20), np.float32),
        center=(10.0, 10.0),
        affine=np.eye(2),
        out_shape=(11, 11),
        kernel="lanczos5",
        no_data_bit=1,
    )
    by_stars = {}
    for n in (30, 300, 3000):
        run = OUT / f"scale_4096_{n}"
        exp = exposure.read_exposure(str(run / "x.fits"), fmt="lsst_calexp")
        boresight = warp.boresight_of(exp.wcs, exp.metadata, **schema_defaults()["boresight"])
        model = sky.read_sky_model(str(run / "results" / "x" / "sky_model.fits"), shape=exp.shape)
        stars = catalog.read_stars(str(run / "results" / "x" / "stars.ecsv"))
        steps = {
            "stamp_extraction": lambda: stampsfile.write_stamps(
                files["cutouts"],
                extract.extract_stamps(exp, stars, model, stamp_size=(250, 250), do_remove_detected=True),
            ),
            "warping": lambda: stampsfile.write_stamps(
                files["warped"],
                warp.warp_stamps(
                    stampsfile.read_stamps(files["cutouts"], memmap=True),
                    exp.wcs,
                    kernel="lanczos5",
                    do_apply_transform=True,
                    model_stamp_buffer=1.1,
                    nb90_rots=0,
                    orientation="quarter_turns",
                    boresight=boresight,
                ),
            ),
            "normalization": lambda: stampsfile.write_stamps(
                files["normalized"],
                normalize.normalize_stamps(
                    stampsfile.read_stamps(files["warped"], memmap=True),
                    annular_flux_radii=(70, 80),
                    annular_flux_statistic="MEANCLIP",
                    num_sigma_clip=4.0,
                    num_iter=3,
                    bad_mask_planes=list(LSST_BAD_MASK_PLANES),
                    min_valid_annulus_fraction=0.0,
                    discard_nan_flux_stars=False,
                    normalize_variance=True,
                ),
            ),
        }
        times = {k: [] for k in steps}
        for _ in range(repeats):
            for name, step in steps.items():  # in order: each reads the file the one before wrote
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
        by_stars[n] = {k: statistics.median(v) for k, v in times.items()}
    shutil.rmtree(work)
    pairs = [(30, 300), (300, 3000)]
    return {
        "seconds": {str(n): v for n, v in by_stars.items()},
        "ms_per_star": {str(n): {k: 1e3 * t / n for k, t in v.items()} for n, v in by_stars.items()},
        "marginal_ms_per_star": {
            f"{a}->{b}": 1e3 * sum(by_stars[b][k] - by_stars[a][k] for k in by_stars[a]) / (b - a)
            for a, b in pairs
        },
    }


# ---------------------------------------------------------------------------------------------
# 4. workflow overhead and the DAG


def _small_exposures(n):
    """n simulated 300 x 300 exposures of one star at G = 11, over the four demo detectors."""
    return [
        {
            "name": f"x{i:04d}" if n > 1 else "x0",
            "detector": i % 4,
            "yaw": 90.0 * (i % 4),
            "size": 300,
            "stars": [(150.3, 149.6, 11.0)],
        }
        for i in range(n)
    ]


def workflow_overhead(n_exposures=200, cores=2):
    """Wall time of n small exposures against the sum of the jobs' own (benchmark) times."""
    from workflow_runs import write_small_run

    run = OUT / "overhead"
    if run.exists():
        shutil.rmtree(run)
    exposures = _small_exposures(n_exposures)
    config = write_small_run(run, exposures)
    targets = [f"results/{e['name']}/bright_star_stamps.fits" for e in exposures]
    wall = _snakemake(
        run, config, *targets, cores=cores, extra=["--scheduler-subsample", str(SCHEDULER_SUBSAMPLE)]
    )
    jobs = [_job_record(run, s, e["name"])["s"] for s in STEPS for e in exposures]
    ideal = sum(jobs) / cores
    return {
        "exposures": n_exposures,
        "jobs": len(jobs),
        "cores": cores,
        "wall_s": wall,
        "sum_job_s": sum(jobs),
        "overhead_fraction": wall / ideal - 1,
        "median_job_s": statistics.median(jobs),
    }


def dag_dry_run(n_exposures=10000):
    """Seconds of `snakemake -n` over n exposures (all rows point at one small image)."""
    from workflow_runs import write_small_run

    run = OUT / "dag"
    if run.exists():
        shutil.rmtree(run)
    config = write_small_run(run, _small_exposures(1))
    rows = "".join(f"e{i:05d}\tx0.fits\tr\t{i % 4}\n" for i in range(n_exposures))
    (run / "exposures.tsv").write_text("exposure\timage\tband\tdetector\n" + rows)
    seconds = _snakemake(run, config, extra=["-n"])
    return {"exposures": n_exposures, "dry_run_s": seconds}


def grouping(n_exposures=40):
    """The same n small exposures through profiles/slurm on a one-node SLURM started here, with
    and without the profile's job group (local execution ignores groups, so only a cluster
    executor shows their effect): wall time, sbatch submissions and the jobs' own time."""
    from workflow_runs import write_small_run

    hpc = REPO / "tests" / "hpc"
    work = OUT / "grouping"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    os.chmod(work, 0o755)
    env = dict(os.environ, SLURM_TEST_DIR=str(work / "slurm"))
    if subprocess.run(["bash", str(hpc / "start-slurm.sh")], env=env, capture_output=True).returncode:
        return {
            "available": False,
            "note": "a one-node SLURM cannot be started here (needs root and apt-get)",
        }
    try:
        profile = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
        profile = profile.replace('"<your_account>"', '"brightstamps"').replace(
            '"<your_partition>"', '"debug"'
        )
        ungrouped = profile.split("groups:")[0]  # the group keys and their caps come last
        exposures = _small_exposures(n_exposures)
        result = {"available": True, "exposures": n_exposures}
        for name, text in (("grouped", profile), ("ungrouped", ungrouped)):
            run = work / name
            config = write_small_run(run, exposures)
            (work / f"profile_{name}").mkdir()
            (work / f"profile_{name}" / "config.yaml").write_text(text)
            targets = [f"results/{e['name']}/bright_star_stamps.fits" for e in exposures]
            cmd = [
                sys.executable,
                "-m",
                "snakemake",
                *targets,
                "-s",
                str(REPO / "Snakefile"),
                "--directory",
                str(run),
                "--configfile",
                str(config),
                "--workflow-profile",
                str(work / f"profile_{name}"),
            ]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode:
                raise RuntimeError(f"{name} SLURM run failed:\n{proc.stderr[-2000:]}")
            jobs = [_job_record(run, s, e["name"])["s"] for s in STEPS for e in exposures]
            result[name] = {
                "wall_s": wall,
                "sbatch": proc.stderr.count("submitted with SLURM jobid"),
                "sum_job_s": sum(jobs),
                "overhead_fraction": wall / (sum(jobs) / 2) - 1,
            }
        return result
    finally:
        subprocess.run(["bash", str(hpc / "stop-slurm.sh")], env=env, capture_output=True)


# ---------------------------------------------------------------------------------------------
# 5. Gnuastro


def _gnuastro_available():
    if shutil.which("astscript-psf-stamp"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's gnuastro (apt-get) ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "gnuastro"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return bool(shutil.which("astscript-psf-stamp"))


def _radial_profile(image, valid, edges):
    yy, xx = np.indices(image.shape)
    r = np.hypot(xx - image.shape[1] // 2, yy - image.shape[0] // 2)
    return np.array(
        [
            np.nanmean(np.where(valid & (r >= a) & (r < b), image, np.nan))
            for a, b in itertools.pairwise(edges)
        ]
    )


def gnuastro(n_stars=30, marginal_s_per_star=None):
    """astscript-psf-stamp against our five steps on the 4k / 300-star exposure (no distortion
    correction, so that both only centre the star), brightest *n_stars* unsaturated-ring stars."""
    if not _gnuastro_available():
        return {
            "available": False,
            "note": "astscript-psf-stamp not found and not installable (needs root + apt-get)",
        }
    from brightstamps.masks import LSST_BAD_MASK_PLANES
    from brightstamps.stampsfile import read_stamps

    run = OUT / "gnuastro"
    ours = five_steps(run, size=4096, n_stars=300, config={"do_apply_transform": False})
    stamps = read_stamps(run / "results" / "x" / "bright_star_stamps.fits")
    bad = sum(1 << stamps.mask_planes[p] for p in LSST_BAD_MASK_PLANES if p in stamps.mask_planes)
    order = np.argsort(np.asarray(stamps.stars["g_mag"]))
    chosen = [k for k in order if np.isfinite(stamps.stars["annular_flux"][k])][:n_stars]
    tmp = run / "gnuastro_out"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    seconds, ratios = [], []
    edges = np.arange(10, 82, 4)
    version = subprocess.run(
        ["astscript-psf-stamp", "--version"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    for k in chosen:
        x, y = float(stamps.stars["x"][k]), float(stamps.stars["y"][k])
        out = tmp / f"s{k}.fits"
        cmd = [
            "astscript-psf-stamp",
            str(run / "x.fits"),
            "--hdu=1",
            "--mode=img",
            f"--center={x + 1},{y + 1}",
            "--widthinpix=275,275",
            "--normradii=70,80",
            "--normop=sigclip-mean",
            f"--output={out}",
            f"--tmpdir={tmp / f't{k}'}",
            "--quiet",
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds.append(time.perf_counter() - t0)
        from astropy.io import fits

        with fits.open(out) as hdul:
            theirs = next(h.data for h in hdul if h.data is not None).astype(np.float64)
        mine = stamps.image[k].astype(np.float64)
        valid = (stamps.mask[k] & bad) == 0
        ratios.append(_radial_profile(mine, valid, edges) / _radial_profile(theirs, valid, edges) - 1)
    ratios = np.array(ratios)
    ours_per_stamp = ours["total_s"] / 300
    result = {
        "available": True,
        "version": version,
        "stars": len(chosen),
        "gnuastro_s_per_stamp": statistics.median(seconds),
        "ours_s_per_stamp_all_five_steps": ours_per_stamp,
        "ratio_all_five_steps": statistics.median(seconds) / ours_per_stamp,
        "profile_bins_px": [float(edges[0]), float(edges[-1])],
        "median_abs_profile_difference": float(np.nanmedian(np.abs(ratios))),
        "median_profile_difference": float(np.nanmedian(ratios)),
        # each star's own constant (normalization) divided out: the shapes alone; the constants
        # differ because our ring statistic leaves out other sources' footprints and theirs does not
        "median_abs_shape_difference": float(
            np.nanmedian(np.abs((1 + ratios) / np.nanmedian(1 + ratios, axis=1)[:, None] - 1))
        ),
        "median_abs_normalization_difference": float(np.nanmedian(np.abs(np.nanmedian(ratios, axis=1)))),
    }
    if marginal_s_per_star:
        result["ours_marginal_s_per_stamp"] = marginal_s_per_star
        result["ratio_marginal"] = statistics.median(seconds) / marginal_s_per_star
    return result


# ---------------------------------------------------------------------------------------------
# 6. one exposure's lookup in a large partitioned catalog

# detector-sized regions: a 4k x 4k detector at 0.2"/px is 0.23 deg in radius; with the stamp
# margin, the 1.05 factor and the 0.1 deg proper-motion pad about 0.4 deg. Across RA = 0, near
# the pole and on a pixel corner too.
HATS_REGIONS = [
    (150.0, 2.0, 0.4),
    (0.05, -30.0, 0.4),
    (45.0, 89.8, 0.4),
    (90.0, 41.8103, 0.4),
    (210.0, -60.0, 0.4),
]

_HATS_LOOKUP = """
import json, sys, time
sys.path.insert(0, {repo!r})
from brightstamps.catalog import SkyCircle, read_catalog
from brightstamps.configref import schema_defaults
vega_to_ab = schema_defaults()["catalog"]["vega_to_ab"]
times = []
for _ in range(2):  # the first includes the lazy imports (pyarrow.parquet, astropy_healpix)
    t0 = time.perf_counter()
    cat = read_catalog({root!r}, columns="gaia", mag_system="", vega_to_ab=vega_to_ab,
                       region=SkyCircle({ra}, {dec}, {radius}))
    times.append(time.perf_counter() - t0)
# VmHWM, not ru_maxrss: a process started directly by another one inherits the other's ru_maxrss
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{"first_s": times[0], "again_s": times[1], "rows": len(cat), "partitions": len(cat.meta["files"]),
                  "peak_rss_mb": hwm / 1024}}))
"""


def hats_lookup(n_rows=10_000_000):
    """Per-exposure lookups in a synthetic HATS catalog of *n_rows* (written to bench/hats once)."""
    root = OUT / "hats"
    result = {"rows": n_rows}
    done = root / "rows"  # written last: the catalog is complete
    if not (done.is_file() and done.read_text() == str(n_rows)):
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.perf_counter()
        # in a process of its own, so that this process stays small
        code = (
            f"from hats_catalog import write_hats_catalog; write_hats_catalog({str(root)!r}, n_rows={n_rows})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO / "tests")
        done.write_text(str(n_rows))
        result["write_s"] = time.perf_counter() - t0
    result["partitions"] = sum(1 for _ in root.rglob("Npix=*.parquet"))
    result["megabytes"] = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 1e6
    lookups = []
    for ra, dec, radius in HATS_REGIONS:  # a fresh process each: its peak memory is the lookup's own
        code = _HATS_LOOKUP.format(repo=str(REPO), root=str(root), ra=ra, dec=dec, radius=radius)
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        lookups.append({"ra": ra, "dec": dec, "radius_deg": radius, **json.loads(out.stdout)})
    result["lookups"] = lookups
    return result


# ---------------------------------------------------------------------------------------------


def _print_table(r):
    m = r["machine"]
    print(
        f"\nbrightstamps {r['version']} bench, {r['date']}, {m['cores']} cores, {m['cpu']}, python {m['python']}"
    )
    w = r["warp"]
    print("\n1. warp, 250x250 cut-out -> 275x275 stamp, one core      ms/stamp   stamps/s   vs lanczos5")
    for k, v in w["ms_per_stamp"].items():
        print(f"   {k:<52}{v:9.2f}{1e3 / v:11.0f}{v / w['ms_per_stamp']['lanczos5']:12.1f}x")
    e = r["exposure_4k_300"]
    print(
        f"\n2. one 4096x4096 exposure, 300 stars, one core: {e['total_s']:.1f} s, peak {e['max_rss_mb']:.0f} MB"
    )
    for s, v in e["steps"].items():
        print(f"   {s:<20}{v['s']:7.2f} s{v['max_rss_mb']:8.0f} MB")
    st = r["startup"]
    print(
        f"   start-up per job: warping {st['warping']['imports_s']:.2f} s imports + kernel cache "
        f"({st['warping']['with_interpreter_s']:.2f} s with the interpreter), normalization "
        f"{st['normalization']['imports_s']:.2f} s ({st['normalization']['with_interpreter_s']:.2f} s)"
    )
    sc = r["scaling"]
    print("\n3. scaling (five steps, one core)")
    for b in sc["by_stars"]:
        print(f"   4096^2, {b['stars']:5d} stars: {b['total_s']:7.1f} s, peak {b['max_rss_mb']:6.0f} MB")
    for b in sc["by_size"][:-1]:
        print(
            f"   {b['size']}^2, {b['stars']:5d} stars: {b['total_s']:7.1f} s, peak {b['max_rss_mb']:6.0f} MB"
        )
    print(
        "   marginal s/star: "
        + ", ".join(f"{v * 1e3:.1f} ms" for v in sc["marginal_s_per_star"])
        + " (30->300, 300->3000); stamp steps alone "
        + ", ".join(f"{v * 1e3:.1f} ms" for v in sc["marginal_s_per_star_stamp_steps"])
        + "; marginal s/Mpix: "
        + ", ".join(f"{v:.2f}" for v in sc["marginal_s_per_mpix"])
        + " (1k->2k, 2k->4k)"
    )
    p = r["per_star"]
    print(
        "   the stamp steps in one process (no start-up, exposure read once), ms per star: "
        + ", ".join(f"{n} stars {sum(v.values()):.1f}" for n, v in p["ms_per_star"].items())
        + "; marginal "
        + ", ".join(f"{k} {v:.1f}" for k, v in p["marginal_ms_per_star"].items())
    )
    o = r["overhead"]
    print(
        f"\n4. {o['exposures']} exposures ({o['jobs']} jobs), --cores {o['cores']}: wall {o['wall_s']:.0f} s, "
        f"jobs' own time {o['sum_job_s']:.0f} s ({o['median_job_s']:.2f} s median): overhead "
        f"{100 * o['overhead_fraction']:.0f} %"
    )
    d = r["dag"]
    print(f"   dry run of {d['exposures']} exposures: {d['dry_run_s']:.0f} s")
    g = r["gnuastro"]
    if g["available"]:
        print(
            f"\n5. {g['version']}, astscript-psf-stamp, {g['stars']} stars: {g['gnuastro_s_per_stamp'] * 1e3:.0f} ms/stamp;"
            f" ours {g['ours_s_per_stamp_all_five_steps'] * 1e3:.1f} ms/stamp all five steps included "
            f"({g['ratio_all_five_steps']:.0f}x)"
            + (
                f", {g['ours_marginal_s_per_stamp'] * 1e3:.1f} ms marginal ({g['ratio_marginal']:.0f}x)"
                if "ratio_marginal" in g
                else ""
            )
        )
        print(
            f"   normalized profiles, {g['profile_bins_px'][0]:.0f}-{g['profile_bins_px'][1]:.0f} px: median "
            f"|ours/theirs - 1| {100 * g['median_abs_profile_difference']:.2f} % (signed "
            f"{100 * g['median_profile_difference']:+.2f} %); shape alone {100 * g['median_abs_shape_difference']:.2f} %, "
            f"normalization alone {100 * g['median_abs_normalization_difference']:.2f} %"
        )
    else:
        print(f"\n5. Gnuastro: {g['note']}")
    if "stack_weighting" in r:
        sw = r["stack_weighting"]
        none, weighted = sw["runs"]["none"], sw["runs"]["inverse_variance"]
        print(
            f"\n7. stacking {sw['stamps']:,} stamps of 275x275 (memory_mb {sw['memory_mb']}), MEANCLIP: "
            f"unweighted {none['seconds']:.0f} s, peak {none['peak_rss_mb']:.0f} MB; inverse-variance weighted "
            f"{weighted['seconds']:.0f} s, peak {weighted['peak_rss_mb']:.0f} MB ({sw['time_ratio']:.2f}x the time)"
        )
    h = r["hats"]
    print(
        f"\n6. HATS catalog, {h['rows']:,} rows in {h['partitions']} partitions ({h['megabytes']:.0f} MB), "
        "one exposure's lookup (0.4 deg) in a fresh process:"
    )
    for x in h["lookups"]:
        print(
            f"   ({x['ra']:7.2f}, {x['dec']:6.2f}): {x['partitions']} partitions, {x['rows']} rows, "
            f"{x['first_s']:.2f} s with imports, {1e3 * x['again_s']:.0f} ms again, peak {x['peak_rss_mb']:.0f} MB"
        )


DOCS_PAGE = REPO / "docs" / "performance.md"
_DOCS_BEGIN, _DOCS_END = "<!-- bench figures: begin -->", "<!-- bench figures: end -->"


def figures_text(results):
    """The table of a whole bench run (what it prints), as text."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _print_table(results)
    return out.getvalue().strip("\n")


def render_docs(results, page=DOCS_PAGE):
    """Put the figures of *results* (a whole run) into the docs page, between its two markers."""
    text = Path(page).read_text()
    begin, end = text.index(_DOCS_BEGIN) + len(_DOCS_BEGIN), text.index(_DOCS_END)
    block = f"\n\n```text\n{figures_text(results)}\n```\n\n"
    Path(page).write_text(text[:begin] + block + text[end:])


def bench_all():
    """Every item but grouping; the table on stdout, everything in bench/results.json."""
    from brightstamps import __version__

    OUT.mkdir(exist_ok=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    results = {
        "version": __version__,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    steps = [
        ("warp", bench_warp),
        ("exposure_4k_300", lambda: five_steps(OUT / "scale_4096_300", size=4096, n_stars=300, repeats=3)),
        ("startup", startup),
        ("scaling", scaling),
        ("per_star", per_star_in_process),
        ("overhead", workflow_overhead),
        ("dag", dag_dry_run),
        ("hats", hats_lookup),
        ("stack_weighting", stack_weighting),
    ]
    for name, fn in steps:
        print(f"[bench] {name} ...", flush=True)
        results[name] = fn()
    print("[bench] gnuastro ...", flush=True)
    results["gnuastro"] = gnuastro(marginal_s_per_star=results["scaling"]["marginal_s_per_star"][-1])
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)
    render_docs(results)
    print(f"\nwritten: {OUT / 'results.json'}")


def _print_and_record(key, res):
    """Print one measurement run on its own and put it into bench/results.json, if there is one."""
    print(json.dumps(res, indent=2))
    path = OUT / "results.json"
    if path.exists():
        data = json.loads(path.read_text())
        data[key] = res
        path.write_text(json.dumps(data, indent=2) + "\n")


def _stack_files(n_stamps, *, per_file=250):
    """*n_stamps* noisy 275 x 275 stamps of a Moffat-like PSF in bench/stack/ (made once); paths, PSF."""
    from astropy.table import Table

    from brightstamps.masks import LSST_MASK_PLANES
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
            stars = Table(
                {
                    "gaia_id": np.arange(i, i + n, dtype=np.int64),
                    "g_mag": np.full(n, 8.0),
                    "annular_flux": np.ones(n),
                    "valid_annulus_fraction": np.ones(n),
                }
            )
            header = {"EXPOSURE": f"e{i}", "DETECTOR": 0, "NORMED": True, "CENTERX": 137, "CENTERY": 137}
            write_stamps(
                path,
                Stamps(
                    images,
                    np.zeros((n, 275, 275), np.int32),
                    np.full((n, 275, 275), 1e-4, np.float32),
                    stars,
                    dict(LSST_MASK_PLANES),
                    header,
                ),
            )
            del images
        paths.append(str(path))
    return paths, psf


def stack_memory(n_stamps, *, per_file=250, memory_mb=1000):
    """Peak memory of stacking *n_stamps* 275 x 275 stamps (written to bench/stack/ first)."""
    from brightstamps.masks import LSST_BAD_MASK_PLANES
    from brightstamps.stack import stack_stamps

    paths, psf = _stack_files(n_stamps, per_file=per_file)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    models, _ = stack_stamps(
        paths,
        regions={},
        normalization="annulus",
        weighting="none",
        flux_radius=50,
        statistic="MEANCLIP",
        num_sigma_clip=4,
        num_iter=3,
        bad_mask_planes=list(LSST_BAD_MASK_PLANES),
        min_valid_annulus_fraction=0.0,
        mag_limit=None,
        include_failed=False,
        psf_fit={},
        memory_mb=memory_mb,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    err = np.nanmax(np.abs(models["DEFAULT"]["image"] - psf))
    print(
        f"stacked {n_stamps} stamps of 275x275 in {seconds:.0f} s; peak RSS {peak:.0f} MB "
        f"(before the stack {before:.0f} MB; budget memory_mb={memory_mb}); max |stack - truth| = {err:.4f}"
    )


def stack_run(weighting, n_stamps, memory_mb=1000):
    """One stack of the bench's *n_stamps* stamps (MEANCLIP, *weighting*): seconds and peak RSS, as JSON."""
    from brightstamps.masks import LSST_BAD_MASK_PLANES
    from brightstamps.stack import StackInput, open_sources, stack_sources

    paths, psf = _stack_files(n_stamps)
    sources = open_sources(paths)
    inputs = [StackInput(src, np.arange(len(src)), np.ones(len(src))) for src in sources]
    start = time.perf_counter()
    result = stack_sources(
        inputs,
        weighting=weighting,
        statistic="MEANCLIP",
        num_sigma_clip=4.0,
        num_iter=3,
        bad_mask_planes=list(LSST_BAD_MASK_PLANES),
        memory_mb=memory_mb,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    err = float(np.nanmax(np.abs(result["image"] - psf)))
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "max_abs_error": err}))


def stack_weighting(n_stamps=10_000):
    """7. The weighted stack beside LSST's unweighted MEANCLIP, same stamps, each in a process of its own."""
    _stack_files(n_stamps)  # written once, before either is timed
    runs = {}
    for weighting in ("none", "inverse_variance"):
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "stack-run", weighting, str(n_stamps)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs[weighting] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "stamps": n_stamps,
        "shape": [275, 275],
        "memory_mb": 1000,
        "runs": runs,
        "time_ratio": runs["inverse_variance"]["seconds"] / runs["none"]["seconds"],
    }


def load(n_exposures, cores=2):
    """Run the workflow over *n_exposures* small simulated exposures; report failures and memory.

    Memory is followed per job (each job's log records its peak) in the order the jobs ran, and for
    the Snakemake process itself (sampled every second), to show it stays flat.
    """
    from workflow_runs import write_small_run

    run = REPO / "bench" / "load"
    if run.exists():
        shutil.rmtree(run)
    exposures = _small_exposures(n_exposures)
    config = write_small_run(run, exposures)
    cmd = _snakemake_cmd(run, config, cores=cores, extra=["--scheduler-subsample", str(SCHEDULER_SUBSAMPLE)])
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
    peaks = [
        float(p.read_text().rsplit("peak memory ", 1)[1].split()[0])
        for p in logs
        if "peak memory" in p.read_text()
    ]
    done = len(list((run / "results").glob("*/bright_star_stamps.fits")))
    third = max(1, len(peaks) // 3)
    rss = [m for _, m in samples]
    print(
        f"{n_exposures} exposures, {cores} cores: exit {proc.returncode}, {done} products, {seconds:.0f} s; "
        f"job peaks {min(peaks):.0f}-{max(peaks):.0f} MB (first third median {statistics.median(peaks[:third]):.0f}, "
        f"last third {statistics.median(peaks[-third:]):.0f}); snakemake RSS first/last/max "
        f"{rss[0]:.0f}/{rss[-1]:.0f}/{max(rss):.0f} MB"
    )
    if proc.returncode:
        print(err[-3000:])


# ---------------------------------------------------------------------------------------------
# the command line


def main(argv=None):
    """The one entry point: ``bench/bench.py [command] [N]``, with no command the whole bench."""
    parser = argparse.ArgumentParser(
        prog="bench/bench.py",
        usage="%(prog)s [-h] [command [N]]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="command", prog="bench/bench.py")
    parser.set_defaults(run=lambda args: bench_all())
    commands.add_parser(
        "all", help="every item but grouping (the default): table, bench/results.json, docs/performance.md"
    )
    commands.add_parser("render", help="docs/performance.md's figures from bench/results.json").set_defaults(
        run=lambda args: render_docs(json.loads((OUT / "results.json").read_text()))
    )
    commands.add_parser("warp", help="1. warp throughput per kernel, beside numpy and scipy").set_defaults(
        run=lambda args: print(json.dumps(bench_warp(), indent=2))
    )
    # kept apart from the default run: it starts a SLURM (root) and takes about 10 minutes
    sub = commands.add_parser("grouping", help="4b. N exposures through SLURM, grouped and not (root)")
    sub.add_argument("n_exposures", nargs="?", type=int, default=40, metavar="N")
    sub.set_defaults(run=lambda args: _print_and_record("grouping", grouping(args.n_exposures)))
    sub = commands.add_parser("stack-memory", help="peak memory of stacking N stamps of 275 x 275")
    sub.add_argument("n_stamps", type=int, metavar="N")
    sub.set_defaults(run=lambda args: stack_memory(args.n_stamps))
    sub = commands.add_parser("stack-weighting", help="7. weighted vs unweighted stack of N stamps (10000)")
    sub.add_argument("n_stamps", nargs="?", type=int, default=10_000, metavar="N")
    sub.set_defaults(run=lambda args: _print_and_record("stack_weighting", stack_weighting(args.n_stamps)))
    sub = commands.add_parser("stack-run", help="one stack of the bench's N stamps (used by stack-weighting)")
    sub.add_argument("weighting", choices=["none", "inverse_variance"])
    sub.add_argument("n_stamps", type=int, metavar="N")
    sub.set_defaults(run=lambda args: stack_run(args.weighting, args.n_stamps))
    sub = commands.add_parser("load", help="N small exposures through the workflow, memory per job")
    sub.add_argument("n_exposures", type=int, metavar="N")
    sub.set_defaults(run=lambda args: load(args.n_exposures))
    sub = commands.add_parser("hats", help="6. per-exposure lookups in a partitioned catalog of N_ROWS")
    sub.add_argument("n_rows", nargs="?", type=int, default=10_000_000, metavar="N_ROWS")
    sub.set_defaults(run=lambda args: _print_and_record("hats", hats_lookup(args.n_rows)))
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
