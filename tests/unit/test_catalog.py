"""Catalog: formats and column mapping, the flux limit, the overlap rule, proper motions."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from numpy.testing import assert_allclose

from brightstamps.catalog import flux_limit_njy, match_stars, read_catalog
from brightstamps.errors import InputError

COLUMNS = {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag", "flux": "",
           "pmra": "pmra", "pmdec": "pmdec", "epoch": "ref_epoch"}


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [500.5, 400.5]  # pixel (499.5, 399.5) 0-based is the reference point
    w.wcs.cd = [[-0.2 / 3600, 0.0], [0.0, 0.2 / 3600]]
    return w


def _table_at_pixels(wcs, xy, mags, **extra):
    sky = wcs.all_pix2world(np.asarray(xy, float), 0)
    t = Table({"source_id": np.arange(1, len(xy) + 1, dtype=np.int64) * 1000, "ra": sky[:, 0],
               "dec": sky[:, 1], "phot_g_mean_mag": np.asarray(mags, float)})
    for k, v in extra.items():
        t[k] = v
    return t


@pytest.mark.parametrize("ext", ["fits", "ecsv", "csv", "parquet"])
def test_read_every_table_format(tmp_path, ext):
    t = _table_at_pixels(_wcs(), [[10, 10], [20, 30]], [12.0, 15.0])
    path = tmp_path / f"cat.{ext}"
    t.write(path, format={"fits": "fits", "ecsv": "ascii.ecsv", "csv": "ascii.csv", "parquet": "parquet"}[ext])
    cat = read_catalog(path, columns={**COLUMNS, "pmra": "", "pmdec": "", "epoch": ""})
    assert list(cat["id"]) == [1000, 2000]
    assert_allclose(cat["flux"], 10 ** ((31.4 - np.array([12.0, 15.0])) / 2.5))


def test_missing_column_lists_what_the_catalog_has(tmp_path):
    t = _table_at_pixels(_wcs(), [[10, 10]], [12.0])
    t.write(tmp_path / "cat.fits")
    with pytest.raises(InputError, match=r"cat.fits: catalog lacks column\(s\) pmra \(catalog.columns.pmra\).*"
                                         r"it has: source_id, ra, dec, phot_g_mean_mag"):
        read_catalog(tmp_path / "cat.fits", columns=COLUMNS)


def test_lsst_refcat_names_with_flux_in_njy_and_radians(tmp_path):
    t = Table({"id": np.array([7], np.int64), "coord_ra": [np.radians(150.0)], "coord_dec": [np.radians(2.0)],
               "phot_g_mean_flux": [flux_limit_njy(15.0)]})
    t["coord_ra"].unit = "rad"
    t["coord_dec"].unit = "rad"
    t["phot_g_mean_flux"].unit = "nJy"
    t.write(tmp_path / "ref.fits")
    cat = read_catalog(tmp_path / "ref.fits", columns={"id": "id", "ra": "coord_ra", "dec": "coord_dec",
                                                       "mag": "", "flux": "phot_g_mean_flux"})
    assert cat["ra"][0] == pytest.approx(150.0) and cat["dec"][0] == pytest.approx(2.0)
    assert cat["mag"][0] == pytest.approx(15.0)


def test_flux_limit_is_strict_and_overlap_includes_centres_off_the_detector():
    wcs = _wcs()
    shape = (800, 1000)
    # inside; 100 px off the left edge (box still overlaps); 130 px off (no overlap);
    # exactly at the limit (dropped: flux must be strictly greater); NaN magnitude (dropped)
    xy = [[300, 300], [-100.0, 300], [-130.0, 300], [500, 500], [600, 600]]
    mags = [12.0, 12.0, 12.0, 18.0, np.nan]
    cat = read_catalog_from(_table_at_pixels(wcs, xy, mags))
    stars = match_stars(cat, wcs, fits.Header(), shape=shape, mag_limit=18.0, stamp_size=(250, 250),
                        proper_motion=False)
    assert list(stars["gaia_id"]) == [1000, 2000]
    assert_allclose(stars["x"], [300, -100], atol=1e-6)


def read_catalog_from(table):
    out = Table({"id": table["source_id"], "ra": table["ra"], "dec": table["dec"],
                 "mag": table["phot_g_mean_mag"]})
    out["flux"] = 10 ** ((31.4 - out["mag"]) / 2.5)
    for k in ("pmra", "pmdec", "ref_epoch"):
        if k in table.colnames:
            out[k if k != "ref_epoch" else "epoch"] = table[k]
    return out


def test_proper_motion_moves_a_fast_star_onto_its_image():
    wcs = _wcs()
    # a star now at pixel (400, 400), moving 1 arcsec/yr north; catalog epoch 2016.0, exposure 2026.0
    now = wcs.all_pix2world([[400.0, 400.0]], 0)[0]
    dt = 10.0
    t = Table({"id": np.array([1], np.int64), "ra": [now[0]], "dec": [now[1] - 1000 * dt / 3.6e6],
               "mag": [12.0], "pmra": [0.0], "pmdec": [1000.0], "epoch": [2016.0]})
    t["flux"] = 10 ** ((31.4 - t["mag"]) / 2.5)
    header = fits.Header({"MJD-OBS": 57388.5 + dt * 365.25})
    moved = match_stars(t, wcs, header, shape=(800, 1000), mag_limit=18, stamp_size=(250, 250), proper_motion=True)
    still = match_stars(t, wcs, header, shape=(800, 1000), mag_limit=18, stamp_size=(250, 250), proper_motion=False)
    assert moved["x"][0] == pytest.approx(400.0, abs=0.01) and moved["y"][0] == pytest.approx(400.0, abs=0.01)
    assert still["y"][0] == pytest.approx(400.0 - 50.0, abs=0.05)  # 10 arcsec = 50 px at 0.2"/px
