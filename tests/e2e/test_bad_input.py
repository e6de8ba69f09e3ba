"""Bad input stops with one clear line naming the file or field, and leaves no partial output."""

import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from conftest import run_snakemake, write_small_run

ONE_STAR = [{"name": "e1", "detector": 0, "yaw": 0.0, "size": 300, "stars": [(150.3, 149.6, 9.0)]}]


def _strip_wcs(run):
    with fits.open(run / "e1.fits", mode="update") as hdul:
        wcs_key = re.compile(r"^(CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CD\d_|PC\d_|A_|B_|AP_|BP_|WCSAXES|LONPOLE|LATPOLE"
                             r"|RADESYS|EQUINOX|MJDREF)")
        for key in [k for k in hdul[1].header if wcs_key.match(k)]:
            del hdul[1].header[key]


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


def _bad_exposure_id(run):
    tsv = run / "exposures.tsv"
    tsv.write_text(tsv.read_text().replace("\ne1\t", "\ne 1/..\t"))


def _truncated_image(run):
    data = (run / "e1.fits").read_bytes()
    (run / "e1.fits").write_bytes(data[: len(data) // 2])


CASES = {
    "missing file": (_missing_image, "nowhere.fits"),
    "FITS without WCS": (_strip_wcs, "e1.fits: the image header has no celestial WCS"),
    "mask without MP_ cards": (_strip_mask_planes, "e1.fits (HDU 2): the mask HDU has no MP_* cards"),
    "catalog without the configured column": (
        _catalog_without_mag,
        "catalog.fits: catalog lacks column(s) phot_g_mean_mag (catalog.columns.mag); it has: source_id, ra, dec"),
    "unknown kernel": (_config("warping_kernel: lanczos5", "warping_kernel: lanczos7"), "warping_kernel"),
    "wrong type": (_config("mag_limit: 18.0", "mag_limit: bright"), "mag_limit"),
    "inverted radii": (_config("- 20\n- 25", "- 25\n- 20"),
                       "annular_flux_radii [25, 20]: the inner radius must be smaller than the outer"),
    "exposure id with / and space": (_bad_exposure_id, "exposure id 'e 1/..' may only hold"),
    "truncated FITS": (_truncated_image, "e1.fits"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_line_and_no_output(tmp_path, case):
    mutate, message = CASES[case]
    config = write_small_run(tmp_path, ONE_STAR)
    mutate(tmp_path)
    proc = run_snakemake(tmp_path, configfile=config, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert any(message in line for line in out.splitlines()), out[-3000:]
    results = tmp_path / "results"
    if results.exists():
        leftovers = [p for p in results.rglob("*") if p.is_file()]
        assert not any(".tmp" in p.name for p in leftovers), leftovers
        assert not (results / "e1" / "bright_star_stamps.fits").exists()


def test_the_failing_step_writes_the_reason_in_its_log(tmp_path):
    config = write_small_run(tmp_path, ONE_STAR)
    _strip_mask_planes(tmp_path)
    run_snakemake(tmp_path, configfile=config, check=False)
    log = (tmp_path / "logs" / "sky_correction" / "e1.log").read_text()
    assert "the mask HDU has no MP_* cards" in log
    assert np.all([not (tmp_path / "results" / "e1" / "sky_model.fits").exists()])
