"""The bad-input corpus: each case ends in one clear line naming the file or field (and a failed
job, no partial output), or in a documented valid result. Every case is built here from one small
simulated exposure with one bright star."""

import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from workflow_runs import run_snakemake, write_small_run

from brightstamps.stampsfile import read_stamps

ONE_STAR = [{"name": "e1", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(150.3, 149.6, 9.0)]}]


WCS_KEY = re.compile(
    r"^(CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CD\d_|PC\d_|A_|B_|AP_|BP_|WCSAXES|LONPOLE|LATPOLE"
    r"|RADESYS|EQUINOX|MJDREF)"
)


def _strip_wcs(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        for key in [k for k in hdul[1].header if WCS_KEY.match(k)]:
            del hdul[1].header[key]


def _wcs_in(name):
    """The exposure's WCS (image, mask and variance HDUs) re-expressed in *name*: the same sky."""

    def mutate(run):
        from astropy.wcs import WCS
        from frame_wcs import reexpress

        with fits.open(run / "e1.fits", mode="update") as hdul:
            _, cards = reexpress(WCS(hdul[1].header), name, shape=hdul[1].data.shape)
            for hdu in hdul[1:]:
                for key in [k for k in hdu.header if WCS_KEY.match(k)]:
                    del hdu.header[key]
                hdu.header.update(cards)

    return mutate


def _ecliptic_wcs(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        for hdu in hdul[1:]:
            hdu.header["CTYPE1"], hdu.header["CTYPE2"] = "ELON-TAN-SIP", "ELAT-TAN-SIP"


def _strip_boresight(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        del hdul[0].header["BORE-RA"], hdul[0].header["BORE-DEC"]


def _strip_mask_planes(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        for key in [k for k in hdul[2].header if k.startswith("MP_")]:
            del hdul[2].header[key]


def _missing_image(run):
    (run / "exposures.tsv").write_text((run / "exposures.tsv").read_text().replace("e1.fits", "nowhere.fits"))


def _catalog_without_mag(run):
    t = Table.read(run / "catalog.fits")
    del t["phot_g_mean_mag"]
    t.write(run / "catalog.fits", overwrite=True)


def _config(text_from, text_to):
    def mutate(run):
        cfg = run / "config.yaml"
        assert text_from in cfg.read_text()
        cfg.write_text(cfg.read_text().replace(text_from, text_to))

    return mutate


def _truncated_image(run):
    data = (run / "e1.fits").read_bytes()
    (run / "e1.fits").write_bytes(data[: len(data) // 2])


def _no_image_hdu(run):
    fits.PrimaryHDU().writeto(run / "e1.fits", overwrite=True)


def _divergent_wcs(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        for h in (hdul[1].header, hdul[2].header, hdul[3].header):
            h["A_2_0"] = 0.05  # a "distortion" that folds the detector over itself
            h["B_0_2"] = 0.05


def _all_nan(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        hdul[1].data[:] = np.nan


def _all_masked(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        hdul[2].data |= np.int32(1 << 0)  # BAD everywhere


def _mismatched_variance(run):
    with fits.open(run / "e1.fits") as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul])
    hdus[3] = fits.ImageHDU(np.ones((299, 300), np.float32), header=hdus[3].header)
    hdus.writeto(run / "e1.fits", overwrite=True)


def _set_cards(hdu, **cards):
    """Overwrite cards of e1.fits in its bytes, as a corrupt write would (astropy refuses to)."""

    def mutate(run):
        path = run / "e1.fits"
        with fits.open(path) as hdul:
            start, end = hdul[hdu].fileinfo()["hdrLoc"], hdul[hdu].fileinfo()["datLoc"]
        data = bytearray(path.read_bytes())
        for at in range(start, end, 80):
            key = data[at : at + 8].decode().rstrip()
            if key in cards:
                data[at : at + 80] = f"{key:<8}= {cards.pop(key):>20}".ljust(80).encode()
        assert not cards
        path.write_bytes(bytes(data))

    return mutate


def _mjd_obs_not_a_number(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        hdul[0].header["MJD-OBS"] = "yesterday"


def _unnamed_mask_bit(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        hdul[2].data[10, 10:13] |= np.int32(1 << 12)  # the simulated calexp names bits 0-10


def _bad_variances(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        hdul[3].data[140:145, 140:145] = 0.0  # in the star's stamp
        hdul[3].data[5, 5] = -1.0


def _catalog(edit):
    def mutate(run):
        t = Table.read(run / "catalog.fits")
        t = edit(t)
        t.write(run / "catalog.fits", overwrite=True)

    return mutate


def _nan_magnitude(t):
    t["phot_g_mean_mag"] = np.nan
    return t


def _duplicate_ids(t):
    from astropy.table import vstack

    return vstack([t, t])


def _elsewhere(t):
    t["dec"] = t["dec"] - 30.0
    return t


def _off_detector(t):
    from brightstamps import simulate

    wcs = simulate.detector_wcs(detector=0, yaw_deg=0.0, size=300)
    t["ra"], t["dec"] = wcs.all_pix2world([-400.0], [150.0], 0)  # 400 px off: no overlap
    return t


def _beyond_the_pole(t):
    t["dec"][0] = 180.0 - t["dec"][0]  # the star seen again from the other side of the pole
    t["ra"][0] = (t["ra"][0] + 180.0) % 360.0
    return t


def _no_stamps(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    assert len(stamps) == 0 and stamps.image.shape == (0, 67, 67)


def _one_unnormalized_stamp(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    assert list(stamps.stars["norm_status"]) == ["few_valid_pixels"] and np.isnan(
        stamps.stars["annular_flux"][0]
    )


def _even_stamp_size(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    assert stamps.image.shape == (1, 67, 67) and stamps.header["CENTERX"] == 33  # int(60 * 1.1) = 66 -> 67


def _bad_variances_are_no_data(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    no_data = (stamps.mask[0] & (1 << stamps.mask_planes["NO_DATA"])) != 0
    cy, cx = stamps.header["CENTERY"], stamps.header["CENTERX"]
    assert no_data[cy - 8 : cy - 6, cx - 8 : cx - 6].all()  # pixels (140-144, 140-144) of the exposure
    log = (run / "logs" / "stamp_extraction" / "e1.log").read_text()
    assert (
        "[bad_variance] e1.fits (HDU 3): 26 pixels with a variance that is not usable (25 0, 1 negative)"
        in log
    )


def _same_star_same_pixel(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    assert list(stamps.stars["gaia_id"]) == [1000] and stamps.header["WCSFRAME"] == "galactic"
    assert abs(stamps.stars["x"][0] - 150.3) < 1e-6 and abs(stamps.stars["y"][0] - 149.6) < 1e-6
    assert (stamps.stars["ra"][0], stamps.stars["dec"][0]) == tuple(
        Table.read(run / "catalog.fits")[0]["ra", "dec"]
    )


def _boresight_from_crval(run):
    stamps = read_stamps(run / "results" / "e1" / "bright_star_stamps.fits")
    assert len(stamps) == 1 and stamps.header["BORESRC"] == "WCS CRVAL (no BORE-RA,BORE-DEC cards)"
    log = (run / "logs" / "warping" / "e1.log").read_text()
    assert "WARNING brightstamps.warp: [boresight_fallback] e1.fits: the boresight is the WCS CRVAL" in log


def _unknown_column(run):
    tsv = run / "exposures.tsv"
    header, row = tsv.read_text().splitlines()
    tsv.write_text(f"{header}\tvaraince\n{row}\tvariance.fits\n")  # a misspelt optional column


def _image_named(name):
    def mutate(run):
        (run / "e1.fits").rename(run / name)
        tsv = run / "exposures.tsv"
        tsv.write_text(tsv.read_text().replace("\te1.fits\t", f"\t{name}\t"))

    return mutate


def _read_from(name):
    def check(run):
        header = fits.getheader(run / "results" / "e1" / "bright_star_stamps.fits")
        assert header["INFILE1"] == name and header["NSTAMPS"] == 1

    return check


def _detector_cell(value):
    def mutate(run):
        tsv = run / "exposures.tsv"
        tsv.write_text(tsv.read_text().replace("\tr\t0\n", f"\tr\t{value}\n"))

    return mutate


def _band(value):
    def mutate(run):
        tsv = run / "exposures.tsv"
        tsv.write_text(tsv.read_text().replace("\tr\t0\n", f"\t{value}\t0\n"))

    return mutate


def _error(message):
    """The run fails with *message* within one line of its output; a message of several lines must
    be whole consecutive lines (Snakemake's own messages)."""
    return ("error", message)


def _valid(check):
    return ("valid", check)


CASES = {
    # files
    # Snakemake's own message, at DAG build: a block of lines, none of which says both file and problem
    "missing file": (
        _missing_image,
        _error("brightstamps config: exposures.tsv row 2 (e1): image nowhere.fits not found"),
    ),
    "truncated FITS": (
        _truncated_image,
        _error(
            "e1.fits: HDU 2 (BITPIX = 32, NAXIS1 = 300, NAXIS2 = 300) needs 360000 bytes of data but the file ends "
            "175680 bytes after its header: a truncated file, or a BITPIX or NAXISn card that does not match the "
            "data"
        ),
    ),
    "FITS with no image HDU": (_no_image_hdu, _error("e1.fits: HDU 1 should hold the 2-D image plane")),
    "image without celestial WCS": (_strip_wcs, _error("e1.fits: the image header has no celestial WCS")),
    "WCS not invertible over the detector": (
        _divergent_wcs,
        _error("e1.fits: the WCS cannot be inverted over the detector"),
    ),
    "WCS in galactic coordinates": (_wcs_in("galactic"), _valid(_same_star_same_pixel)),
    "WCS in ecliptic coordinates": (
        _ecliptic_wcs,
        _error(
            "e1.fits: the WCS's celestial frame (CTYPE 'ELON-TAN-SIP', "
            "'ELAT-TAN-SIP') cannot be converted to the catalog's ICRS"
        ),
    ),
    "no boresight cards": (_strip_boresight, _valid(_boresight_from_crval)),
    "image all NaN": (_all_nan, _error("e1.fits: the image has no finite pixel")),
    "all-masked exposure": (_all_masked, _valid(_one_unnormalized_stamp)),
    "mask without MP_ cards": (_strip_mask_planes, _error("e1.fits (HDU 2): the mask HDU has no MP_* cards")),
    "mismatched image/variance shapes": (
        _mismatched_variance,
        _error("e1.fits: variance plane has shape (299, 300), the image (300, 300)"),
    ),
    "BITPIX changed from -32 to 16": (
        _set_cards(1, BITPIX="16"),
        _error(
            "e1.fits: HDU 1 (BITPIX = 16, NAXIS1 = 300, NAXIS2 = 300): the 1440 bytes after its 180000 "
            "bytes of data, which pad it to a 2880-byte block, are not zeros"
        ),
    ),
    "NAXIS1/2 enlarged to 100000": (
        _set_cards(1, NAXIS1="100000", NAXIS2="100000"),
        _error(
            "e1.fits: HDU 1 (BITPIX = -32, NAXIS1 = 100000, NAXIS2 = 100000) needs 40000000000 bytes of "
            "data but the file ends"
        ),
    ),
    "MJD-OBS not a number": (_mjd_obs_not_a_number, _error("e1.fits: MJD-OBS = 'yesterday' is not a number")),
    "mask bit without an MP_ card": (
        _unnamed_mask_bit,
        _error("e1.fits (HDU 2): mask bit 12 (value 4096, 3 pixels) has no MP_* card naming a plane"),
    ),
    "zero and negative variances": (_bad_variances, _valid(_bad_variances_are_no_data)),
    # catalogs
    "catalog without the configured column": (
        _catalog_without_mag,
        _error(
            "catalog.fits: catalog lacks column(s) phot_g_mean_mag (catalog.columns.mag); it has: source_id"
        ),
    ),
    "catalog with NaN magnitudes": (_catalog(_nan_magnitude), _valid(_no_stamps)),
    "catalog with duplicate ids": (
        _catalog(_duplicate_ids),
        _error("catalog.fits: catalog ids are not unique: 1000"),
    ),
    "empty catalog": (_catalog(lambda t: t[:0]), _valid(_no_stamps)),
    "catalog of another part of the sky": (_catalog(_elsewhere), _valid(_no_stamps)),
    "stars all off the detector": (_catalog(_off_detector), _valid(_no_stamps)),
    "catalog row with a Dec beyond the pole": (
        _catalog(_beyond_the_pole),
        _error(
            "catalog.fits: 1 row(s) with Dec outside [-90, 90] or NaN (catalog.columns.dec = dec; id 1000)"
        ),
    ),
    # configuration and table: the schemas' errors here; the package's checks at DAG build
    # (brightstamps.config) are unit tests (tests/unit/test_config.py), and the two cases that go
    # through them here, and the dry runs below, show that rules/common.smk reports them as one line
    "even stamp size": (_config("- 61\n- 61", "- 60\n- 60"), _valid(_even_stamp_size)),
    "zero stamp size": (
        _config("- 61\n- 61", "- 0\n- 0"),
        _error("stamp_size.0: 0 is less than the minimum of 3"),
    ),
    "unknown kernel": (
        _config("warping_kernel: lanczos5", "warping_kernel: lanczos7"),
        _error("warping_kernel: 'lanczos7' is not one of"),
    ),
    "unknown mask plane": (
        _config("- SUSPECT\n", "- SUSPECT\n- SUSPICIOUS\n"),
        _error("bad_mask_planes: unknown mask plane 'SUSPICIOUS'"),
    ),
    "config value of the wrong type": (
        _config("mag_limit: 18.0", "mag_limit: bright"),
        _error("mag_limit: 'bright' is not of type 'number'"),
    ),
    "unknown (misspelt) column": (
        _unknown_column,
        _error(
            "exposures.tsv: unknown column(s) varaince; allowed: exposure, image, band, detector, mask, "
            "variance,"
        ),
    ),
    "'#' and '{}' in a file name": (_image_named("e#1{}.fits"), _valid(_read_from("e#1{}.fits"))),
    "a name in braces in a file name": (
        _image_named("e{1}.fits"),
        _error(
            "exposures.tsv row 2 (e1): image e{1}.fits: Snakemake would read '{1}' (a name in braces) as a "
            "wildcard"
        ),
    ),
    "band with a space": (
        _band("r i"),
        _error("exposures.tsv row 2 (e1): column band: 'r i' does not match"),
    ),
    "unknown (misspelt) config field": (
        _config("mag_limit: 18.0", "mag_limit: 18.0\nmag_limt: 17.0"),
        _error("brightstamps config: unknown field(s) mag_limt; allowed: exposures, "),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_corpus(tmp_path, case):
    mutate, (outcome, expected) = CASES[case]
    config = write_small_run(tmp_path, ONE_STAR)
    mutate(tmp_path)
    proc = run_snakemake(tmp_path, configfile=config, check=False)
    out = proc.stdout + proc.stderr
    results = tmp_path / "results"
    leftovers = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert not any(".tmp" in p.name for p in leftovers), leftovers  # never a partial file
    if outcome == "valid":
        assert proc.returncode == 0, out[-3000:]
        expected(tmp_path)
        return
    assert proc.returncode != 0
    if "\n" in expected:
        assert f"\n{expected}\n" in f"\n{out}\n", out[-3000:]
    else:
        assert any(expected in line for line in out.splitlines()), out[-3000:]
    assert not (results / "e1" / "bright_star_stamps.fits").exists()


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            _config("- 61\n- 61", "- 31\n- 31"),
            "brightstamps config: annular_flux_radii [20, 25]: the annulus does not fit in the 35x35 output stamp "
            "(stamp_size [31, 31] x model_stamp_buffer)",
        ),
        (
            _detector_cell("S4"),
            "brightstamps config: exposures.tsv row 2 (e1): detector 'S4' is neither an integer id nor a detector "
            "name of camera demo (detector_names of brightstamps/cameras/demo.yaml)",
        ),
    ],
)
def test_a_config_error_of_the_package_is_one_line_at_dag_build(tmp_path, mutate, expected):
    """A dry run: the package's InputError (brightstamps.config) is one line, with no traceback."""
    config = write_small_run(tmp_path, ONE_STAR)
    mutate(tmp_path)
    proc = run_snakemake(tmp_path, "-n", configfile=config, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert [line for line in out.splitlines() if "brightstamps config:" in line] == [expected], out[-3000:]
    assert "Traceback" not in out and "InputError" not in out


def test_the_failing_step_writes_the_reason_in_its_log(tmp_path):
    config = write_small_run(tmp_path, ONE_STAR)
    _strip_mask_planes(tmp_path)
    assert run_snakemake(tmp_path, configfile=config, check=False).returncode != 0
    log = (tmp_path / "logs" / "sky_correction" / "e1.log").read_text()
    assert log.splitlines()[-1] == (
        "brightstamps: error in rule sky_correction: e1.fits (HDU 2): the mask HDU has "
        "no MP_* cards naming its planes"
    )
    assert not (tmp_path / "results" / "e1" / "sky_model.fits").exists()


def test_a_target_for_an_exposure_not_in_the_table_is_named(tmp_path):
    """Exposure ids are matched by their character class (fast DAG), so the table is checked here."""
    config = write_small_run(tmp_path, ONE_STAR)
    # (--cores ends --configfile's list of files, so that the target is not read as one)
    proc = run_snakemake(
        tmp_path, "--cores", "2", "results/e2/bright_star_stamps.fits", configfile=config, check=False
    )
    assert proc.returncode != 0
    assert "exposure 'e2' is not in the exposures table exposures.tsv" in proc.stderr + proc.stdout


def test_an_image_listed_under_two_ids_is_warned_about_once(tmp_path):
    """One line per group at DAG build, naming the ids and files, once per run (jobs run too)."""
    config = write_small_run(tmp_path, ONE_STAR)
    (tmp_path / "copy.fits").write_bytes((tmp_path / "e1.fits").read_bytes())
    (tmp_path / "other.fits").write_bytes((tmp_path / "e1.fits").read_bytes()[:-2880])  # not the same
    with open(tmp_path / "exposures.tsv", "a") as f:
        f.write("e2\te1.fits\tr\t0\ne3\tcopy.fits\tr\t0\ne4\tother.fits\tr\t0\n")
    proc = run_snakemake(
        tmp_path, "--cores", "2", "results/e1/stars.ecsv", "results/e3/stars.ecsv", configfile=config
    )
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "brightstamps: warning" in line]
    assert warnings == [
        "brightstamps: warning: exposures.tsv: exposures e1, e2, e3 read images with "
        "identical bytes (copy.fits, e1.fits); their stars would be stacked more than once"
    ]
    assert (tmp_path / "results" / "e3" / "stars.ecsv").is_file()  # a warning, not an error


def test_an_empty_detector_cell_takes_the_id_of_the_header(tmp_path):
    """At DAG build: the simulated calexp's primary DETECTOR card, 7, is not in the demo camera."""
    config = write_small_run(tmp_path, ONE_STAR)
    _detector_cell("")(tmp_path)
    with fits.open(tmp_path / "e1.fits", mode="update") as hdul:
        hdul[0].header["DETECTOR"] = 7
    proc = run_snakemake(tmp_path, "-n", configfile=config, check=False)
    assert proc.returncode != 0
    assert "camera demo: no yaw for detector(s) 7 of exposures.tsv" in proc.stdout + proc.stderr
