"""The workflow on real exposures of every format: DECam CP triplets, a generic FITS image made
from a DECam ooi (no mask, no variance), and an HSC calexp in the LSST layout (no bright star)."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table, vstack
from workflow_runs import run_snakemake

from brightstamps.stampsfile import read_stamps

STAR_ID = 869663330491814144  # the saturated G = 10.52 star all six DECam cut-outs are centred on


def gaia_catalog(path, decam):
    """The real Gaia chunks of *decam* as one FITS table of Gaia archive columns (``columns: gaia``,
    Vega G)."""
    chunks = [Table.read(p) for p in sorted((decam / "gaia").glob("chunk-*.fits"))]
    columns = ["source_id", "ra", "dec", "phot_g_mean_mag", "pmra", "pmdec", "ref_epoch"]
    table = vstack([c[columns] for c in chunks], metadata_conflicts="silent")
    for name in ("pmra", "pmdec"):  # stars without a proper motion: NaN, which the catalog reads as none
        table[name] = np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan)
    table.write(path, overwrite=True)
    return path


def plain_fits_from_ooi(ooi, path):
    """A generic FITS image: HDU 1 of a DECam ooi (data and header, TPV WCS) as a primary HDU."""
    with fits.open(ooi) as hdul:
        header = hdul[1].header.copy()
        for key in ("XTENSION", "PCOUNT", "GCOUNT", "INHERIT", "EXTNAME"):
            header.remove(key, ignore_missing=True)
        fits.PrimaryHDU(np.asarray(hdul[1].data, dtype=np.float32), header=header).writeto(path)
    return path


@pytest.fixture(scope="module")
def formats_run(tmp_path_factory, repo, shared_data):
    """One run: the six DECam exposures (decam_cp), one generic FITS and the HSC calexp. The DECam and
    FITS rows leave the detector empty: it is read from their headers (CCDNUM)."""
    decam = shared_data / "decam_testcase6"
    hsc = shared_data / "lsst_calexp_layout" / "HSC-0908120-056-small.fits"
    run = tmp_path_factory.mktemp("formats_run")
    gaia_catalog(run / "gaia.fits", decam)
    ooi = sorted((decam / "images").glob("*_ooi_*.fits"))
    plain = plain_fits_from_ooi(ooi[3], run / "plain.fits")
    rows = ["exposure\timage\tband\tdetector\tformat"]
    names = []
    for path in ooi:
        with fits.open(path) as hdul:
            band = hdul[0].header["BAND"].strip()
        name = path.name.split("_ooi_")[0]
        names.append(name)
        rows.append(f"{name}\t{path}\t{band}\t\tdecam_cp")
    rows.append(f"plain\t{plain.name}\tg\t\tfits")
    rows.append(f"hsc\t{hsc}\ti\t56\tlsst_calexp")
    (run / "exposures.tsv").write_text("\n".join(rows) + "\n")
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config.update(
        {
            "exposures": "exposures.tsv",
            "stamp_size": [41, 41],
            "annular_flux_radii": [12, 16],
            "catalog": {"path": "gaia.fits", "columns": "gaia"},  # real Gaia: Vega G, + 0.106 by the scheme
            "fits_format": {"gain_keyword": "ARAWGAIN"},
            "sky_fit": {"enabled": False, "mesh_size": 64},
            "camera": "",
            "detector_yaw_deg": {},
            "report_exposure_mosaics": 0,  # cameras mixed: no yaw table
        }
    )
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/{n}/bright_star_stamps.fits" for n in [*names, "plain", "hsc"]]
    run_snakemake(run, *targets, "--configfile", str(run / "config.yaml"))  # targets before the option's list
    return run, names


def test_decam_cp_exposures_give_the_bright_star_stamp_from_a_fitted_sky(formats_run):
    run, names = formats_run
    assert len(names) == 6
    for name in names:
        stamps = read_stamps(run / "results" / name / "bright_star_stamps.fits")
        h = stamps.header
        assert h["EXPFMT"] == "decam_cp" and h["VARSRC"] == "weight" and h["SKYMODE"] == "FIT"
        assert STAR_ID in set(stamps.stars["gaia_id"].tolist())
        k = list(stamps.stars["gaia_id"]).index(STAR_ID)
        # the CP's DQ codes are named planes: the saturated core is SAT, weight-0 pixels NO_DATA
        assert {"SAT", "BLEED", "NO_DATA", "STREAK", "CR"} <= set(stamps.mask_planes)
        cy, cx = h["CENTERY"], h["CENTERX"]
        centre = int(stamps.mask[k, cy, cx])
        assert centre & (1 << stamps.mask_planes["SAT"]) and centre & (1 << stamps.mask_planes["NO_DATA"])
        # the oow and ood files found by name are inputs (provenance cards), the sky was fitted
        infiles = [v for key, v in h.items() if key.startswith("INFILE")]
        assert any("_oow_" in f for f in infiles) and any("_ood_" in f for f in infiles)
        log = (run / "logs" / "sky_correction" / f"{name}.log").read_text()
        assert "sky is not subtracted" in log
        # sky removed: the stamp's outskirts (masked pixels aside) are near zero, not the ~300 ADU sky
        good = stamps.mask[k] == 0
        assert np.isfinite(stamps.image[k][good]).all()


def test_detectors_left_empty_in_the_table_are_the_ccdnum_of_the_headers(formats_run):
    run, names = formats_run
    for name in [*names, "plain"]:
        image = fits.getheader(run / "results" / name / "bright_star_stamps.fits")["INFILE1"]
        ccd = {"S4": 28, "S9": 20}[Path(image).name.split(".")[-2]] if name != "plain" else 20
        for step in ("stamps_raw.fits", "bright_star_stamps.fits"):
            assert fits.getheader(run / "results" / name / step)["DETECTOR"] == ccd, (name, step)


def test_generic_fits_without_mask_or_variance_runs_and_says_the_variance_is_estimated(formats_run):
    run, _ = formats_run
    stamps = read_stamps(run / "results" / "plain" / "bright_star_stamps.fits")
    h = stamps.header
    assert h["EXPFMT"] == "fits" and h["VARSRC"] == "estimated"
    assert h["VARGAIN"] == pytest.approx(4.5)  # ARAWGAIN of the ooi
    # the sky noise of the CP's own weight map (median of the sky's weights) is 9.65 ADU
    assert 9.65 < h["VARSKYSG"] < 1.25 * 9.65
    assert h["SKYMODE"] == "FIT"
    assert STAR_ID in set(stamps.stars["gaia_id"].tolist())
    k = list(stamps.stars["gaia_id"]).index(STAR_ID)
    # no mask: the saturation level (SATURATE card) flags the core
    assert stamps.mask[k, h["CENTERY"], h["CENTERX"]] & (1 << stamps.mask_planes["SAT"])
    assert np.isfinite(stamps.variance[k][stamps.mask[k] == 0]).all()


def test_hsc_calexp_run_ends_with_a_valid_file_of_no_stamps(formats_run):
    run, _ = formats_run
    path = run / "results" / "hsc" / "bright_star_stamps.fits"
    stamps = read_stamps(path)
    assert len(stamps) == 0 and stamps.header["EXPFMT"] == "lsst_calexp"
    assert stamps.header["VARSRC"] == "variance plane" and stamps.header["SKYMODE"] == "NONE"
    with fits.open(path) as hdul:
        assert hdul[0].header["NSTAMPS"] == 0


def test_a_decam_row_whose_companions_cannot_be_named_stops_before_any_job(tmp_path):
    image = tmp_path / "exposure.fits"
    image.write_bytes(b"")
    (tmp_path / "exposures.tsv").write_text(
        f"exposure\timage\tband\tdetector\tformat\ne1\t{image.name}\tg\t1\tdecam_cp\n"
    )
    config = {"exposures": "exposures.tsv"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "-n", configfile=tmp_path / "config.yaml", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "row 2 (e1)" in out and "'_ooi_'" in out and "give the mask column" in out


def test_a_missing_oow_file_is_named_by_snakemake(tmp_path, shared_data):
    src = min((shared_data / "decam_testcase6" / "images").glob("*_ooi_*.fits"))
    ooi = tmp_path / src.name
    ooi.symlink_to(src)
    (tmp_path / src.name.replace("_ooi_", "_ood_")).symlink_to(Path(str(src).replace("_ooi_", "_ood_")))
    (tmp_path / "exposures.tsv").write_text(
        f"exposure\timage\tband\tdetector\tformat\ne1\t{ooi.name}\tz\t1\tdecam_cp\n"
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"exposures": "exposures.tsv"}))
    proc = run_snakemake(
        tmp_path,
        "results/e1/sky_model.fits",
        "-n",
        "--configfile",
        str(tmp_path / "config.yaml"),
        check=False,
    )
    assert proc.returncode != 0
    assert src.name.replace("_ooi_", "_oow_") in proc.stdout + proc.stderr


def test_weight_and_variance_together_are_refused(tmp_path):
    (tmp_path / "exposures.tsv").write_text(
        "exposure\timage\tband\tdetector\tformat\tvariance\tweight\ne1\ta.fits\tg\t1\tfits\tv.fits\tw.fits\n"
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"exposures": "exposures.tsv"}))
    proc = run_snakemake(tmp_path, "-n", configfile=tmp_path / "config.yaml", check=False)
    assert proc.returncode != 0 and "not both" in proc.stdout + proc.stderr
