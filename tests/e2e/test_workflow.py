"""The workflow on the demo data: every step's file, the product's format, runs from elsewhere."""

import shutil

import astropy
import numpy as np
import scipy
import yaml
from astropy.io import fits
from workflow_runs import run_snakemake

import brightstamps
from brightstamps.stampsfile import read_stamps

EXPOSURES = [f"demo_det{d}" for d in range(4)]
STEPS = ["sky_correction", "catalog_matching", "stamp_extraction", "warping", "normalization"]


def test_every_step_leaves_its_file_log_and_benchmark(demo_run):
    for exp in EXPOSURES:
        for name in (
            "sky_model.fits",
            "stars.ecsv",
            "stamps_raw.fits",
            "stamps_warped.fits",
            "bright_star_stamps.fits",
        ):
            assert (demo_run / "results" / exp / name).is_file()
        for step in STEPS:
            assert (demo_run / "logs" / step / f"{exp}.log").is_file()
            assert (demo_run / "benchmarks" / step / f"{exp}.tsv").is_file()
    # the fitted/given sky is stored compactly, never as a full-size image
    assert (demo_run / "results" / "demo_det0" / "sky_model.fits").stat().st_size < 20_000


def test_product_format(demo_run):
    path = demo_run / "results" / "demo_det1" / "bright_star_stamps.fits"
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "STARS", "IMAGE", "MASK", "VARIANCE"]
        h = hdul[0].header
        for key in (
            "EXPOSURE",
            "BAND",
            "DETECTOR",
            "NSTAMPS",
            "INNERRAD",
            "OUTERRAD",
            "NB90ROT",
            "KERNEL",
            "NORMSTAT",
            "NORMED",
            "CENTERX",
            "CENTERY",
            "BSVERS",
            "CONFHASH",
        ):
            assert key in h, key
        assert (h["EXPOSURE"], h["BAND"], h["DETECTOR"], h["NB90ROT"]) == ("demo_det1", "r", 1, 1)
        assert (h["INNERRAD"], h["OUTERRAD"], h["KERNEL"], h["NORMSTAT"]) == (70, 80, "lanczos5", "MEANCLIP")
        assert (h["CENTERX"], h["CENTERY"], h["NORMED"], h["BSVERS"]) == (
            137,
            137,
            True,
            brightstamps.__version__,
        )
        # provenance: library versions, input files and their checksums
        assert (h["NPVERS"], h["SPVERS"], h["APVERS"]) == (
            np.__version__,
            scipy.__version__,
            astropy.__version__,
        )
        assert h["INFILE1"] == "resources/demo/demo_det1.fits" and len(h["INSHA1"]) == 64
        assert (
            h["INFILE2"] == "resources/demo/demo_det1_sky.fits"
            and h["INFILE3"] == "resources/demo/catalog.fits"
        )
        n = h["NSTAMPS"]
        assert hdul["IMAGE"].data.shape == (n, 275, 275) and hdul["IMAGE"].data.dtype.name == "float32"
        assert hdul["MASK"].data.dtype.name == "int32" and hdul["VARIANCE"].data.dtype.name == "float32"
        assert any(k.startswith("MP_") for k in hdul["MASK"].header)
        cols = hdul["STARS"].columns
        assert cols["gaia_id"].format == "K"  # int64
        for name in (
            "ra",
            "dec",
            "g_mag",
            "x",
            "y",
            "annular_flux",
            "valid_annulus_fraction",
            "warp_a11",
            "warp_a12",
            "warp_a21",
            "warp_a22",
            "cutout_x0",
            "cutout_y0",
        ):
            assert name in cols.names, name
    stamps = read_stamps(path)
    assert len(stamps) == n and stamps.image.shape[0] == n


def test_off_detector_stars_are_kept_with_no_data(demo_run):
    """Stars whose centre is off the detector but whose box overlaps it: partial stamps."""
    found = 0
    for exp in EXPOSURES:
        s = read_stamps(demo_run / "results" / exp / "bright_star_stamps.fits")
        ny, nx = 2048, 2048
        off = (
            (s.stars["x"] < -0.5)
            | (s.stars["x"] > nx - 0.5)
            | (s.stars["y"] < -0.5)
            | (s.stars["y"] > ny - 0.5)
        )
        for k in np.flatnonzero(off):
            found += 1
            nodata = (s.mask[k] & (1 << s.mask_planes["NO_DATA"])) != 0
            assert nodata.any() and np.isnan(s.image[k][nodata]).all()
            assert np.isfinite(s.image[k][~nodata]).any()
    assert found == 4  # one per demo detector


def test_same_bytes_from_another_directory_and_config_name(demo_run, tmp_path, repo):
    """snakemake -s /path/Snakefile --directory RUN --configfile RUN/x.yaml, from scratch (the demo
    data simulated again), writes byte-identical files: every product, intermediate and figure."""
    run = tmp_path / "elsewhere"
    run.mkdir()
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["exposures"] = "my_exposures.tsv"
    shutil.copy(repo / "config" / "exposures.tsv", run / "my_exposures.tsv")
    (run / "my_config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(run, configfile=run / "my_config.yaml")
    compared = 0
    for top in ("resources", "results"):
        ours = sorted(p.relative_to(demo_run) for p in (demo_run / top).rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(run) for p in (run / top).rglob("*") if p.is_file())
        assert ours == theirs
        for rel in ours:
            assert (demo_run / rel).read_bytes() == (run / rel).read_bytes(), rel
            compared += 1
    assert compared >= 40
