"""Reference catalog: read a star table, select stars brighter than the limit, match to an exposure."""

import logging
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from .errors import InputError
from .files import atomic_output, sha256_file

__all__ = [
    "AB_ZERO_POINT_NJY_MAG",
    "flux_limit_njy",
    "mag_to_njy",
    "njy_to_mag",
    "cutout_corner",
    "read_catalog",
    "match_stars",
    "write_stars",
    "read_stars",
]

log = logging.getLogger(__name__)

#: AB magnitude of 1 nJy: m = -2.5 log10(f / nJy) + 31.4 (astropy's ABmag, 3631 Jy).
AB_ZERO_POINT_NJY_MAG = 31.4

_FORMATS = {".fits": "fits", ".fit": "fits", ".fz": "fits", ".gz": "fits", ".ecsv": "ascii.ecsv",
            ".csv": "ascii.csv", ".parquet": "parquet", ".pq": "parquet"}


def mag_to_njy(mag):
    """Flux in nJy of an AB(-like) magnitude."""
    return 10.0 ** ((AB_ZERO_POINT_NJY_MAG - np.asarray(mag, dtype=np.float64)) / 2.5)


def njy_to_mag(flux):
    """AB(-like) magnitude of a flux in nJy (NaN for non-positive fluxes)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(flux > 0, AB_ZERO_POINT_NJY_MAG - 2.5 * np.log10(flux), np.nan)


def flux_limit_njy(mag_limit):
    """LSST's flux limit: stars with flux strictly greater than this are processed.

    Examples
    --------
    >>> round(flux_limit_njy(18), 6)
    229086.765277
    """
    return float(mag_to_njy(mag_limit))


def cutout_corner(center, size):
    """Cut-out corner of LSST's ``_getCutout``: ``Point2I(c - size/2)``, truncated toward zero.

    Parameters
    ----------
    center : array_like
        ``(..., 2)`` float pixel centres (x, y).
    size : array_like
        Stamp size (x, y).

    Returns
    -------
    numpy.ndarray
        Integer corners, same shape as *center*.

    Examples
    --------
    >>> cutout_corner([100.3, -20.6], [250, 250]).tolist()
    [-24, -145]
    """
    return np.trunc(np.asarray(center, dtype=np.float64) - np.asarray(size) / 2).astype(np.int64)


def _float_column(col):
    """A column as float64 with masked entries as NaN (astropy masks NaN in some readers)."""
    if isinstance(col, u.Quantity):
        return np.asarray(col.value, dtype=np.float64)
    return np.ma.asarray(col).astype(np.float64).filled(np.nan)


def _in_unit(table, name, unit, path):
    """The column in *unit* when it declares a unit; otherwise as it is."""
    col = table[name]
    if getattr(col, "unit", None) is None:
        return col
    try:
        return col.quantity.to(unit)
    except u.UnitConversionError:
        raise InputError(f"{path}: column {name!r} has unit {col.unit}, not convertible to {unit}") from None


def read_catalog(path, *, columns):
    """Read a reference catalog and rename its columns to ours.

    Parameters
    ----------
    path : str
        Table file: FITS, ECSV, CSV or Parquet (by extension).
    columns : dict
        Our name -> the table's column: ``id``, ``ra``, ``dec`` and ``mag`` (AB-like G) or
        ``flux`` (nJy); optional ``pmra``, ``pmdec`` (mas/yr, pmra includes cos dec) and
        ``epoch`` (Julian year). Angles without a unit are taken as degrees.

    Returns
    -------
    astropy.table.Table
        Columns ``id`` (int64), ``ra``, ``dec`` (deg), ``flux`` (nJy), ``mag`` and, when
        mapped, ``pmra``, ``pmdec``, ``epoch``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        msg = f"{path}: unknown catalog format {suffix!r} (use .fits, .ecsv, .csv or .parquet)"
        raise InputError(msg)
    try:
        table = Table.read(path, format=fmt)
    except FileNotFoundError:
        raise InputError(f"{path}: catalog file not found") from None
    except Exception as err:  # astropy's readers raise many types on broken files
        raise InputError(f"{path}: cannot read the catalog as {fmt}: {err}") from None
    mapped = {k: v for k, v in columns.items() if v}
    needed = ["id", "ra", "dec", "mag" if "mag" in mapped else "flux"]
    for key in needed:
        if key not in mapped:
            raise InputError(f"catalog.columns: no column mapped for {key!r}")
    missing = [f"{v} (catalog.columns.{k})" for k, v in mapped.items() if v not in table.colnames]
    if missing:
        msg = f"{path}: catalog lacks column(s) {', '.join(missing)}; it has: {', '.join(table.colnames)}"
        raise InputError(msg)
    out = Table()
    try:
        out["id"] = np.asarray(table[mapped["id"]], dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: id column {mapped['id']!r} is not integer") from None
    ids, counts = np.unique(out["id"], return_counts=True)
    if (counts > 1).any():
        dupes = ", ".join(f"{i} ({c} rows)" for i, c in zip(ids[counts > 1][:5], counts[counts > 1][:5], strict=True))
        raise InputError(f"{path}: catalog ids are not unique: {dupes}")
    if len(table) == 0:
        log.warning("%s: the catalog is empty", path)
    for key in ("ra", "dec"):
        out[key] = _float_column(_in_unit(table, mapped[key], u.deg, path))
    if "mag" in mapped:
        out["mag"] = _float_column(table[mapped["mag"]])
        out["flux"] = mag_to_njy(out["mag"])
    else:
        out["flux"] = _float_column(_in_unit(table, mapped["flux"], u.nJy, path))
        out["mag"] = njy_to_mag(out["flux"])
    for key in ("pmra", "pmdec", "epoch"):
        if key in mapped:
            out[key] = _float_column(table[mapped[key]])
    out.meta["path"] = str(path)
    out.meta["sha256"] = sha256_file(path)
    return out


def _apply_proper_motion(catalog, epoch):
    """Move stars linearly in the tangent plane from their catalog epoch to *epoch*."""
    dt = epoch.jyear - catalog["epoch"]  # Julian years
    pmra = np.nan_to_num(catalog["pmra"])
    pmdec = np.nan_to_num(catalog["pmdec"])
    dt = np.nan_to_num(dt)
    dec = catalog["dec"] + pmdec * dt / 3.6e6
    ra = catalog["ra"] + pmra * dt / 3.6e6 / np.cos(np.radians(catalog["dec"]))
    return np.mod(ra, 360.0), dec


def _angular_distance(ra1, dec1, ra2, dec2):
    """Great-circle distance in degrees (haversine; all in degrees)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    s = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


def match_stars(catalog, wcs, metadata, *, shape, mag_limit, stamp_size, proper_motion, source=""):
    """Select the reference stars of step 2 (catalog matching) for one exposure.

    Keeps stars with flux strictly above the flux at ``mag_limit`` whose ``stamp_size`` cut-out
    box (corner truncated toward zero, as LSST) overlaps the detector, centres off the detector
    included. Order is catalog order, as in LSST.

    Parameters
    ----------
    catalog : astropy.table.Table
        From :func:`read_catalog`.
    wcs : astropy.wcs.WCS
        The exposure's WCS.
    metadata : astropy.io.fits.Header
        The exposure's header (MJD-OBS or DATE-OBS give its epoch).
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    mag_limit : float
        Faint limit (AB-like G).
    stamp_size : sequence of int
        Cut-out size (x, y) in pixels.
    proper_motion : bool
        Move stars to the exposure's epoch (MJD-OBS or DATE-OBS) when the catalog has proper
        motions and an epoch (a deliberate deviation from LSST, which does not).
    source : str
        The exposure's file name, for messages.

    Returns
    -------
    astropy.table.Table
        ``gaia_id``, ``ra``, ``dec`` (deg, at the exposure epoch when corrected), ``g_mag``,
        ``flux_njy``, ``x``, ``y`` (0-based exposure pixels).
    """
    from .exposure import observation_epoch

    ny, nx = shape
    size = np.asarray(stamp_size, dtype=np.int64)
    keep = catalog["flux"] > flux_limit_njy(mag_limit)
    cat = catalog[np.asarray(keep & np.isfinite(catalog["ra"]) & np.isfinite(catalog["dec"]))]
    ra, dec = np.asarray(cat["ra"], dtype=np.float64), np.asarray(cat["dec"], dtype=np.float64)
    corrected = False
    if proper_motion and all(k in cat.colnames for k in ("pmra", "pmdec", "epoch")):
        epoch = observation_epoch(metadata, source=source)
        if epoch is None:
            log.warning("%s: no MJD-OBS/DATE-OBS; proper motions not applied", source)
        else:
            ra, dec = _apply_proper_motion(cat, epoch)
            corrected = True
    # cheap sky pre-filter before the (iterative, for SIP) sky-to-pixel inversion
    margin = float(size.max())
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    corners = np.array([[-margin, -margin], [nx - 1 + margin, -margin], [-margin, ny - 1 + margin],
                        [nx - 1 + margin, ny - 1 + margin]])
    c_ra, c_dec = wcs.all_pix2world([[cx, cy]], 0)[0]
    k_ra, k_dec = wcs.all_pix2world(corners, 0).T
    radius = _angular_distance(c_ra, c_dec, k_ra, k_dec).max() * 1.05
    near = _angular_distance(c_ra, c_dec, ra, dec) <= radius
    cat, ra, dec = cat[near], ra[near], dec[near]
    if len(cat):
        xy = wcs.all_world2pix(np.column_stack([ra, dec]), 0, quiet=True)
    else:
        xy = np.zeros((0, 2))
    corner = cutout_corner(xy, size) if len(cat) else np.zeros((0, 2), dtype=np.int64)
    finite = np.isfinite(xy).all(axis=1)
    overlap = (
        finite
        & (corner[:, 0] <= nx - 1) & (corner[:, 0] + size[0] - 1 >= 0)
        & (corner[:, 1] <= ny - 1) & (corner[:, 1] + size[1] - 1 >= 0)
    )
    out = Table()
    out["gaia_id"] = np.asarray(cat["id"][overlap], dtype=np.int64)
    out["ra"] = ra[overlap]
    out["dec"] = dec[overlap]
    out["g_mag"] = np.asarray(cat["mag"][overlap], dtype=np.float64)
    out["flux_njy"] = np.asarray(cat["flux"][overlap], dtype=np.float64)
    out["x"] = xy[overlap, 0]
    out["y"] = xy[overlap, 1]
    for col, unit in (("ra", u.deg), ("dec", u.deg), ("flux_njy", u.nJy), ("x", u.pix), ("y", u.pix)):
        out[col].unit = unit
    out.meta["exposure"] = source
    out.meta["catalog"] = catalog.meta.get("path", "")
    out.meta["catalog_sha256"] = catalog.meta.get("sha256", "")
    out.meta["proper_motion_applied"] = corrected
    out.meta["mag_limit"] = float(mag_limit)
    log.info("%d stars brighter than %.2f overlap the exposure", len(out), mag_limit)
    return out


def write_stars(path, stars):
    """Write the matched-star table as ECSV (atomically)."""
    with atomic_output(path) as tmp:
        stars.write(tmp, format="ascii.ecsv")


def read_stars(path):
    """Read a matched-star table written by :func:`write_stars`."""
    return Table.read(path, format="ascii.ecsv")
