"""Input paths outside printable ASCII: a run whose image, catalog and sky model sit in a directory
named ``données`` finishes, its headers give the real paths back, and no job's log holds an astropy
header warning (HIERARCH keyword, truncated comment)."""

import shutil

import numpy as np
import yaml
from astropy.io import fits
from test_given_sky_run import _skycorr
from workflow_runs import run_snakemake, write_small_run

from brightstamps.files import path_from_card

EXPOSURES = [
    {"name": "e1", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(150.3, 149.6, 9.0)]},
    {"name": "e2", "detector": 1, "yaw": 90.0, "size": 300, "stars": [(140.2, 160.7, 9.5)]},
]


def _plain_fits(calexp, path):
    """The calexp's image alone as a generic FITS image (format fits: the variance is estimated)."""
    with fits.open(calexp) as hdul:
        header = hdul[1].header.copy()
        for key in ("XTENSION", "PCOUNT", "GCOUNT", "EXTNAME"):
            header.remove(key, ignore_missing=True)
        for key in ("GAIN", "MJD-OBS", "BORE-RA", "BORE-DEC"):
            header[key] = hdul[0].header[key]
        header["SATURATE"] = hdul[0].header["SATLEV"]
        fits.PrimaryHDU(hdul[1].data, header=header).writeto(path)


def test_a_run_from_a_non_ascii_directory_finishes_and_names_its_files(tmp_path):
    configfile = write_small_run(tmp_path, EXPOSURES)
    data = tmp_path / "données"
    data.mkdir()
    shutil.move(tmp_path / "e1.fits", data / "e1.fits")
    _plain_fits(tmp_path / "e2.fits", data / "e2.fits")
    shutil.move(tmp_path / "catalog.fits", data / "catalog.fits")
    centers = np.array([37.0, 112.0, 187.0, 262.0])  # a skyCorr plane, as test_given_sky_run
    _skycorr(data / "skyCorr.fits", 7.0 + 0.01 * centers[None, :] - 0.02 * centers[:, None], 1)
    (tmp_path / "exposures.tsv").write_text(
        "exposure\timage\tband\tdetector\tformat\tsky_model\n"
        "e1\tdonnées/e1.fits\tr\t0\tlsst_calexp\tdonnées/skyCorr.fits\n"
        "e2\tdonnées/e2.fits\tr\t1\tfits\t\n",
        encoding="utf-8",
    )
    config = yaml.safe_load(configfile.read_text())
    config["catalog"]["path"] = "données/catalog.fits"
    configfile.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    run_snakemake(tmp_path, configfile=configfile)

    results = tmp_path / "results"
    with fits.open(results / "e1" / "sky_model.fits") as hdul:
        assert path_from_card(hdul[0].header["SKYFILE"]) == "données/skyCorr.fits"
        assert path_from_card(hdul[0].header["SKYSRC"]) == "données/skyCorr.fits"
    with fits.open(results / "e1" / "stamps_raw.fits") as hdul:
        stars = hdul["STARS"].header
        assert path_from_card(stars["EXPOSURE"]) == "données/e1.fits"
        assert path_from_card(stars["CATALOG"]) == "données/catalog.fits"
    expected = {
        "e1": ["données/e1.fits", "données/skyCorr.fits", "données/catalog.fits"],
        "e2": ["données/e2.fits", "données/catalog.fits"],
    }
    for name, paths in expected.items():
        with fits.open(results / name / "bright_star_stamps.fits") as hdul:
            h = hdul[0].header
            assert [path_from_card(h[f"INFILE{i}"]) for i in range(1, len(paths) + 1)] == paths
            assert f"INFILE{len(paths) + 1}" not in h
            assert h["NSTAMPS"] == 1
    assert (results / "extended_psf" / "r.fits").is_file() and (results / "plots" / "r_stars.tsv").is_file()
    with fits.open(results / "e2" / "bright_star_stamps.fits") as hdul:
        assert (hdul[0].header["VARSRC"], hdul[0].header["VARGSRC"]) == ("estimated", "header GAIN")

    logs = sorted((tmp_path / "logs").rglob("*.log"))
    assert len(logs) >= 10
    for log in logs:
        text = log.read_text()
        assert "py.warnings" not in text and "HIERARCH" not in text, f"{log}:\n{text}"  # e.g. VerifyWarning
