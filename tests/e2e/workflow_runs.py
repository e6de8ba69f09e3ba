"""Helpers of the end-to-end tests (and the bench): run the workflow, write small simulated runs.

A plain module, imported by name (``from workflow_runs import run_snakemake``); the fixtures are in
conftest.py.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from astropy.table import Table

from brightstamps import simulate

_REPO = Path(__file__).resolve().parents[2]  # tests take it from the fixture `repo`


def run_snakemake(workdir, *args, configfile=None, check=True, timeout=900):
    """Run the workflow in *workdir* (its own working directory), return the CompletedProcess."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(_REPO / "Snakefile"),
        "--cores",
        "2",
        "--directory",
        str(workdir),
    ]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def small_config(**overrides):
    """A configuration for small exposures: 61 px cut-outs, annulus 20-25 px."""
    config = yaml.safe_load((_REPO / "config" / "config.yaml").read_text())
    config.update(
        {
            "exposures": "exposures.tsv",
            "stamp_size": [61, 61],
            "annular_flux_radii": [20, 25],
            "catalog": {**config["catalog"], "path": "catalog.fits"},
        }
    )
    config.update(overrides)
    return config


def write_small_run(run, exposures, *, config=None, catalog_rows=None):
    """Write a run directory: simulated exposures, a catalog of their stars, config and table.

    Parameters
    ----------
    exposures : list of dict
        ``name``, ``detector``, ``yaw``, ``size`` and ``stars`` ((x, y, g) list) per exposure.
    """
    run.mkdir(parents=True, exist_ok=True)
    rows, ids, ras, decs, mags = [], [], [], [], []
    for i, e in enumerate(exposures):
        stars = np.array(e["stars"], float).reshape(-1, 3)
        path = run / f"{e['name']}.fits"
        simulate.simulate_exposure(
            path,
            detector=e["detector"],
            yaw_deg=e["yaw"],
            size=e["size"],
            stars={"x": stars[:, 0], "y": stars[:, 1], "flux": simulate.mag_to_flux(stars[:, 2])},
            seed=100 + i,
            cosmic_rays=False,
        )
        wcs = simulate.detector_wcs(detector=e["detector"], yaw_deg=e["yaw"], size=e["size"])
        if len(stars):
            ra, dec = wcs.all_pix2world(stars[:, 0], stars[:, 1], 0)
            ids += [1000 * (i + 1) + k for k in range(len(stars))]
            ras += list(ra)
            decs += list(dec)
            mags += list(stars[:, 2])
        rows.append(f"{e['name']}\t{path.name}\tr\t{e['detector']}")
    table = Table(
        {
            "source_id": np.array(ids, np.int64),
            "ra": np.array(ras, float),
            "dec": np.array(decs, float),
            "phot_g_mean_mag": np.array(mags, float),
            "pmra": np.zeros(len(ids)),
            "pmdec": np.zeros(len(ids)),
            "ref_epoch": np.full(len(ids), 2016.0),
        }
    )
    if catalog_rows is not None:
        table = catalog_rows(table)
    table.write(run / "catalog.fits", overwrite=True)
    (run / "exposures.tsv").write_text("exposure\timage\tband\tdetector\n" + "\n".join(rows) + "\n")
    cfg = small_config(**(config or {}))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run / "config.yaml"
