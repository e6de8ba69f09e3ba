"""A given LSST skyCorr file in the exposures table is subtracted by the workflow."""

import numpy as np
from astropy.io import fits
from workflow_runs import run_snakemake, write_small_run

from brightstamps.stampsfile import read_stamps

SIZE = 300


def _skycorr(path, stats, style):
    """A one-element afw BackgroundList: empty primary, then image, mask, variance of the bins."""
    image = fits.ImageHDU(np.asarray(stats, np.float32))
    for key, value in {
        "INTERPSTYLE": style,
        "UNDERSAMPLESTYLE": 1,
        "BKGD_X0": 0,
        "BKGD_Y0": 0,
        "BKGD_WIDTH": SIZE,
        "BKGD_HEIGHT": SIZE,
    }.items():
        image.header[f"HIERARCH {key}" if len(key) > 8 else key] = value
    shape = np.shape(stats)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            image,
            fits.ImageHDU(np.zeros(shape, np.int32)),
            fits.ImageHDU(np.ones(shape, np.float32)),
        ]
    ).writeto(path)


def test_skycorr_sky_model_is_subtracted_from_the_cutouts(tmp_path):
    exposures = [{"name": "plain", "detector": 0, "yaw": 0.0, "size": SIZE, "stars": [(140.2, 160.7, 11.0)]}]
    configfile = write_small_run(tmp_path, exposures)
    # a second row for the same image, with a skyCorr that is a plane: 7 + 0.01 x - 0.02 y
    centers = np.array([37.0, 112.0, 187.0, 262.0])  # afw centres of 4 bins over 300 px
    _skycorr(tmp_path / "skyCorr.fits", 7.0 + 0.01 * centers[None, :] - 0.02 * centers[:, None], 1)
    table = (tmp_path / "exposures.tsv").read_text().splitlines()
    rows = [table[0] + "\tsky_model", table[1] + "\t", table[1].replace("plain", "sky", 1) + "\tskyCorr.fits"]
    (tmp_path / "exposures.tsv").write_text("\n".join(rows) + "\n")
    run_snakemake(tmp_path, configfile=configfile)
    plain = read_stamps(tmp_path / "results" / "plain" / "stamps_raw.fits")
    sky = read_stamps(tmp_path / "results" / "sky" / "stamps_raw.fits")
    assert sky.header["SKYMODE"] == "GIVEN"
    x0, y0 = int(plain.stars["cutout_x0"][0]), int(plain.stars["cutout_y0"][0])
    yy, xx = np.mgrid[y0 : y0 + plain.image.shape[1], x0 : x0 + plain.image.shape[2]]
    plane = 7.0 + 0.01 * xx - 0.02 * yy
    good = np.isfinite(plain.image[0])
    assert good.sum() > 1000
    # up to the float32 rounding of the cut-out pixels
    tolerance = 1e-4 + 2 * np.finfo(np.float32).eps * np.abs(plain.image[0][good])
    assert np.all(np.abs((plain.image[0] - sky.image[0])[good] - plane[good]) <= tolerance)
