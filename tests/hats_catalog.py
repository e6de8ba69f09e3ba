"""Write a large synthetic HATS catalog (HEALPix-partitioned Parquet) for tests and timing.

Partitions have mixed orders, as an adaptive HATS catalog: HEALPix order-2 pixels, except that
those with pixel number divisible by 3 are split into their four order-3 children.
"""

from pathlib import Path

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy_healpix import lonlat_to_healpix

from brightstamps.hats import partition_path


def partition_of(pix3):
    """(order, pixel) of the partition holding each order-3 nested pixel."""
    parent = pix3 // 4
    split = parent % 3 == 0
    return np.where(split, 3, 2), np.where(split, pix3, parent)


def write_hats(root, columns):
    """Write rows as a HATS catalog under *root* (partitions as :func:`partition_of`).

    *columns* maps names to equal-length arrays, with ``ra`` and ``dec`` in degrees; rows are
    written sorted by HEALPix pixel (stably), and the sorted columns are returned. Without a
    ``source_id`` column, ids 1, 2, ... are given in that sorted order.
    """
    root = Path(root)
    ra, dec = (np.asarray(columns[k], dtype=np.float64) for k in ("ra", "dec"))
    # pixel of the stored position, so each row sits in the partition its values say
    pix3 = lonlat_to_healpix(ra * u.deg, dec * u.deg, 8, order="nested")
    order = np.argsort(pix3, kind="stable")
    # native byte order (FITS columns are big-endian; Arrow takes native arrays only)
    columns = {
        k: np.asarray(v)[order].astype(np.asarray(v).dtype.newbyteorder("=")) for k, v in columns.items()
    }
    if "source_id" not in columns:
        columns = {"source_id": np.arange(1, len(order) + 1, dtype=np.int64), **columns}
    norder, npix = partition_of(pix3[order])
    key = norder * 1000 + npix  # unique per partition; rows of one partition are contiguous
    n_rows = len(key)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], n_rows]
    parts = []
    for s, e in zip(starts, ends, strict=True):
        path = partition_path(root, norder[s], npix[s])
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.table({k: v[s:e] for k, v in columns.items()})
        # ids increase within a partition: delta encoding stores them in a few bits each
        pq.write_table(
            table,
            path,
            compression="zstd",
            use_dictionary=["phot_g_mean_mag"],
            column_encoding={"source_id": "DELTA_BINARY_PACKED"},
        )
        parts.append((int(norder[s]), int(npix[s])))
    parts.sort()
    (root / "partition_info.csv").write_text("Norder,Npix\n" + "".join(f"{o},{p}\n" for o, p in parts))
    (root / "properties").write_text(
        "obs_collection=brightstamps_test\ndataproduct_type=object\n"
        f"hats_nrows={n_rows}\nhats_col_ra=ra\nhats_col_dec=dec\nhats_order=3\nhats_npix_suffix=.parquet\n"
    )
    return columns


def write_hats_catalog(root, *, n_rows, seed=7):
    """Write *n_rows* random stars under *root*; return their ``source_id``, ``ra``, ``dec`` as stored.

    Uniform on the sphere; float32 positions and magnitudes (0.01 mag steps), int64 ids.
    """
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n_rows).astype(np.float32)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_rows))).astype(np.float32)
    mag = np.round(rng.uniform(3.0, 21.0, n_rows), 2).astype(np.float32)
    cols = write_hats(root, {"ra": ra, "dec": dec, "phot_g_mean_mag": mag})
    return cols["source_id"], cols["ra"], cols["dec"]
