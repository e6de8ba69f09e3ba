"""HATS catalogs: HEALPix-partitioned Parquet, of which only the partitions touching a region are read.

The layout (the one LSDB reads; astronomy-commons/hats "directory scheme")::

    <catalog>/properties              key=value lines (hats_col_ra, hats_col_dec, hats_nrows, ...)
    <catalog>/partition_info.csv      "Norder,Npix" rows: the partitions, nested HEALPix pixels
    <catalog>/dataset/Norder=K/Dir=D/Npix=N.parquet   with D = (N // 10000) * 10000

Partitions may be of different orders (adaptive tiling); each is one HEALPix pixel in the NESTED
scheme. The pixel geometry comes from astropy-healpix. Which metadata files make a directory a
HATS catalog is :func:`brightstamps.catalog_config.hats_metadata_files` (the workflow checks it
without astropy).
"""

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from .catalog_config import hats_metadata_files
from .errors import InputError

__all__ = [
    "hats_metadata_files",
    "partition_path",
    "read_hats",
    "read_partition_info",
    "touching_partitions",
]


def partition_path(root, order, pixel):
    """The Parquet file of partition (*order*, *pixel*).

    Examples
    --------
    >>> partition_path("cat", 5, 12345).as_posix()
    'cat/dataset/Norder=5/Dir=10000/Npix=12345.parquet'
    """
    directory = (int(pixel) // 10000) * 10000
    return Path(root) / "dataset" / f"Norder={int(order)}" / f"Dir={directory}" / f"Npix={int(pixel)}.parquet"


def read_partition_info(root):
    """The partitions as an ``(n, 2)`` int64 array of (order, pixel).

    Raises
    ------
    brightstamps.errors.InputError
        When ``partition_info.csv`` is missing or lacks the ``Norder`` and ``Npix`` columns.
    """
    path = Path(root) / "partition_info.csv"
    try:
        table = Table.read(path, format="ascii.csv")
    except FileNotFoundError:
        raise InputError(f"{path}: not found (not a HATS catalog)") from None
    if "Norder" not in table.colnames or "Npix" not in table.colnames:
        raise InputError(f"{path}: needs columns Norder and Npix; it has: {', '.join(table.colnames)}")
    return np.column_stack(
        [np.asarray(table["Norder"], dtype=np.int64), np.asarray(table["Npix"], dtype=np.int64)]
    )


def touching_partitions(partitions, region):
    """The partitions whose HEALPix pixel overlaps a sky circle.

    Parameters
    ----------
    partitions : numpy.ndarray
        ``(n, 2)`` (order, pixel), from :func:`read_partition_info`.
    region : brightstamps.catalog.SkyCircle
        Centre and radius in degrees.

    Returns
    -------
    numpy.ndarray
        The rows of *partitions* that overlap the circle, in their order in *partitions*.
    """
    from astropy_healpix import HEALPix

    keep = np.zeros(len(partitions), dtype=bool)
    for order in np.unique(partitions[:, 0]):
        # all pixels of this order that overlap the cone, partially overlapping ones included
        hits = HEALPix(nside=2 ** int(order), order="nested").cone_search_lonlat(
            region.ra * u.deg, region.dec * u.deg, region.radius * u.deg
        )
        at_order = partitions[:, 0] == order
        keep |= at_order & np.isin(partitions[:, 1], hits)
    return partitions[keep]


def read_hats(root, *, columns, region):
    """Read the given columns of the partitions of a HATS catalog that touch a region.

    Parameters
    ----------
    root : str or os.PathLike
        The catalog directory.
    columns : list of str
        Columns to read (only these are read from the Parquet files); those missing from the
        catalog's schema are left out, for the caller to report.
    region : brightstamps.catalog.SkyCircle
        The sky circle; rows are not cut to it here (their partitions are).

    Returns
    -------
    table : astropy.table.Table
        The rows of the touching partitions, partitions in ``partition_info.csv`` order; meta
        ``all_columns`` lists every column of the catalog.
    files : list of str
        The Parquet files read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(root)
    hats_metadata_files(root)
    parts = touching_partitions(read_partition_info(root), region)
    files = [str(partition_path(root, order, pixel)) for order, pixel in parts]
    tables = []
    schema_names = None
    for f in files:
        try:
            if schema_names is None:
                schema_names = pq.read_schema(f).names
            wanted = [c for c in dict.fromkeys(columns) if c in schema_names]
            tables.append(pq.read_table(f, columns=wanted))
        except FileNotFoundError:
            raise InputError(f"{f}: partition listed in partition_info.csv is missing") from None
        except (pa.ArrowInvalid, OSError) as err:
            raise InputError(f"{f}: cannot read the partition as Parquet: {err}") from None
    if tables:
        merged = pa.concat_tables(tables)
        out = Table({name: merged.column(name).to_numpy() for name in merged.column_names})
    else:  # no partition touches the region: empty columns of the schema's types
        out, schema_names = _empty_table(root, columns)
    out.meta["all_columns"] = list(schema_names)  # for messages: the catalog's columns, not only those read
    return out, files


def _empty_table(root, columns):
    """Zero-row table with the requested columns the catalog has (types from any partition)."""
    import pyarrow.parquet as pq

    any_part = next((root / "dataset").rglob("Npix=*.parquet"), None)
    if any_part is None:
        raise InputError(f"{root}: the HATS catalog has no partition files")
    schema = pq.read_schema(any_part)
    table = Table(
        {
            c: np.zeros(0, dtype=schema.field(c).type.to_pandas_dtype())
            for c in dict.fromkeys(columns)
            if c in schema.names
        }
    )
    return table, schema.names
