"""Documented outcomes: no bright star, an all-masked annulus, failed stars discarded."""

import numpy as np
from astropy.io import fits
from workflow_runs import run_snakemake, write_small_run

from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.stampsfile import read_stamps

EXPOSURES = [
    {"name": "empty", "detector": 0, "yaw": 0.0, "size": 300, "stars": []},
    {"name": "masked", "detector": 1, "yaw": 90.0, "size": 300, "stars": [(150.3, 149.6, 11.0)]},
    {
        "name": "good",
        "detector": 2,
        "yaw": 180.0,
        "size": 300,
        "stars": [(140.2, 160.7, 11.0)],
    },  # g = 9 would be DETECTED over the whole annulus
]


def _mask_everything_bad(path):
    with fits.open(path, mode="update") as hdul:
        hdul[2].data |= np.int32(1 << LSST_MASK_PLANES["BAD"])


def test_no_star_all_masked_annulus_and_discarding(tmp_path):
    config = write_small_run(tmp_path, EXPOSURES, config={"keep_intermediates": False})
    _mask_everything_bad(tmp_path / "masked.fits")
    run_snakemake(tmp_path, configfile=config)
    # keep_intermediates: false makes the per-step files temp(): only the product stays
    assert sorted(p.name for p in (tmp_path / "results" / "good").iterdir()) == ["bright_star_stamps.fits"]

    empty = read_stamps(tmp_path / "results" / "empty" / "bright_star_stamps.fits")
    assert len(empty) == 0 and empty.image.shape == (0, 67, 67)  # a valid file, NSTAMPS = 0
    assert empty.header["NORMED"] is True and "gaia_id" in empty.stars.colnames

    masked = read_stamps(tmp_path / "results" / "masked" / "bright_star_stamps.fits")
    assert len(masked) == 1  # kept, un-normalized, with NaN annular flux (LSST default)
    assert masked.stars["norm_status"][0] == "few_valid_pixels"
    assert np.isnan(masked.stars["annular_flux"][0]) and masked.stars["valid_annulus_fraction"][0] == 0.0
    assert np.nanmax(masked.image[0]) > 1000  # still in exposure units

    good = read_stamps(tmp_path / "results" / "good" / "bright_star_stamps.fits")
    assert good.stars["norm_status"][0] == "ok"

    # discard_nan_flux_stars: the failed star is dropped, the file stays valid
    config.write_text(
        config.read_text().replace("discard_nan_flux_stars: false", "discard_nan_flux_stars: true")
    )
    run_snakemake(tmp_path, configfile=config)
    masked = read_stamps(tmp_path / "results" / "masked" / "bright_star_stamps.fits")
    assert len(masked) == 0 and masked.header["NDISCARD"] == 1


def test_sky_is_fitted_where_no_model_is_given(tmp_path):
    config = write_small_run(tmp_path, EXPOSURES[2:], config={"sky_fit": {"enabled": True, "mesh_size": 64}})
    run_snakemake(tmp_path, configfile=config)
    good = read_stamps(tmp_path / "results" / "good" / "bright_star_stamps.fits")
    assert good.header["SKYMODE"] == "FIT" and good.stars["norm_status"][0] == "ok"
    with fits.open(tmp_path / "results" / "good" / "sky_model.fits") as hdul:
        assert hdul[0].header["SKYMODE"] == "FIT" and hdul["SKYBINS"].data.shape == (5, 5)  # 300 px / 64


def test_all_masked_exposure_cannot_be_sky_fitted(tmp_path):
    config = write_small_run(tmp_path, EXPOSURES[1:2], config={"sky_fit": {"enabled": True}})
    _mask_everything_bad(tmp_path / "masked.fits")
    proc = run_snakemake(tmp_path, configfile=config, check=False)
    assert proc.returncode != 0
    assert "masked.fits: no mesh has 30% usable pixels; cannot fit a sky" in proc.stderr
    assert not (tmp_path / "results" / "masked" / "sky_model.fits").exists()
