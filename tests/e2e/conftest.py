"""End-to-end fixtures: the workflow run on the simulated demo data, and small custom runs."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.table import Table

from brightstamps import simulate

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"


def run_snakemake(workdir, *args, configfile=None, check=True, timeout=900):
    """Run the workflow in *workdir* (its own working directory), return the CompletedProcess."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--cores", "2", "--directory", str(workdir)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    cmd += list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The default configuration (as `make demo`), run from a directory of its own."""
    run = tmp_path_factory.mktemp("demo_run")
    shutil.copytree(REPO / "config", run / "config")
    run_snakemake(run)
    return run


def small_config(**overrides):
    """A configuration for small exposures: 61 px cut-outs, annulus 20-25 px."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config.update({"exposures": "exposures.tsv", "stamp_size": [61, 61], "annular_flux_radii": [20, 25],
                   "catalog": {**config["catalog"], "path": "catalog.fits"}})
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
        simulate.simulate_exposure(path, detector=e["detector"], yaw_deg=e["yaw"], size=e["size"],
                                   stars={"x": stars[:, 0], "y": stars[:, 1],
                                          "flux": simulate.mag_to_flux(stars[:, 2])},
                                   seed=100 + i, cosmic_rays=False)
        wcs = simulate.detector_wcs(detector=e["detector"], yaw_deg=e["yaw"], size=e["size"])
        if len(stars):
            ra, dec = wcs.all_pix2world(stars[:, 0], stars[:, 1], 0)
            ids += [1000 * (i + 1) + k for k in range(len(stars))]
            ras += list(ra)
            decs += list(dec)
            mags += list(stars[:, 2])
        rows.append(f"{e['name']}\t{path.name}\tr\t{e['detector']}")
    table = Table({"source_id": np.array(ids, np.int64), "ra": np.array(ras, float), "dec": np.array(decs, float),
                   "phot_g_mean_mag": np.array(mags, float), "pmra": np.zeros(len(ids)),
                   "pmdec": np.zeros(len(ids)), "ref_epoch": np.full(len(ids), 2016.0)})
    if catalog_rows is not None:
        table = catalog_rows(table)
    table.write(run / "catalog.fits", overwrite=True)
    (run / "exposures.tsv").write_text("exposure\timage\tband\tdetector\n" + "\n".join(rows) + "\n")
    cfg = small_config(**(config or {}))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    return run / "config.yaml"
