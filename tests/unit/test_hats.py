"""HATS catalogs: only the partitions touching the region are read, and the rows are exactly right."""

import re

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy_healpix import lonlat_to_healpix
from hats_catalog import partition_of, write_hats_catalog

from brightstamps.catalog import SkyCircle, read_catalog
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.hats import hats_metadata_files, read_partition_info

N_ROWS = 10_000_000
VEGA_TO_AB = schema_defaults()["catalog"]["vega_to_ab"]


@pytest.fixture(scope="session")
def big_hats(tmp_path_factory):
    """A 10-million-row HATS catalog with partitions of orders 2 and 3 (written once per session)."""
    root = tmp_path_factory.mktemp("hats") / "gaia_like"
    ids, ra, dec = write_hats_catalog(root, n_rows=N_ROWS)
    return root, ids, ra, dec


def _brute_force(ids, ra, dec, region):
    """Ids of the rows within the circle, by astropy's separation (dec band first, for speed)."""
    band = np.abs(dec.astype(np.float64) - region.dec) <= region.radius + 1e-9
    sep = SkyCoord(ra[band].astype(np.float64) * u.deg, dec[band].astype(np.float64) * u.deg).separation(
        SkyCoord(region.ra * u.deg, region.dec * u.deg)
    )
    return np.sort(ids[band][sep.deg <= region.radius])


@pytest.mark.parametrize(
    "region",
    [
        SkyCircle(150.0, 2.0, 0.5),  # ordinary field
        SkyCircle(0.05, -30.0, 0.3),  # across RA = 0
        SkyCircle(45.0, 89.8, 0.4),  # over the pole
        SkyCircle(90.0, 41.8103, 1.2),  # on a corner of base pixels
    ],
)
def test_lookup_reads_only_touching_partitions_and_returns_the_brute_force_rows(big_hats, region):
    root, ids, ra, dec = big_hats
    n_partitions = len(read_partition_info(root))
    cat = read_catalog(root, columns="gaia", region=region, mag_system="", vega_to_ab=VEGA_TO_AB)
    files = cat.meta["files"]
    names = [re.fullmatch(r".*/dataset/Norder=(\d)/Dir=0/Npix=(\d+)\.parquet", f) for f in files]
    assert all(names) and len(set(files)) == len(files)
    read = {(int(m[1]), int(m[2])) for m in names}
    # the partition holding the centre is read, and only a handful of the 384 are
    centre3 = lonlat_to_healpix(region.ra * u.deg, region.dec * u.deg, 8, order="nested")
    order, pixel = partition_of(np.asarray(centre3))
    assert (int(order), int(pixel)) in read
    assert n_partitions == 384 and 1 <= len(read) <= 12
    assert len(cat) > 30  # 242 stars per square degree
    np.testing.assert_array_equal(np.sort(np.asarray(cat["id"])), _brute_force(ids, ra, dec, region))
    # each row's values are the stored ones
    rows = np.searchsorted(ids, cat["id"])
    np.testing.assert_array_equal(np.asarray(cat["ra"]), ra[rows].astype(np.float64))


def test_rule_inputs_are_the_metadata_files_only(big_hats):
    root = big_hats[0]
    assert hats_metadata_files(root) == [str(root / "properties"), str(root / "partition_info.csv")]


def test_a_directory_that_is_not_hats(tmp_path):
    (tmp_path / "properties").write_text("hats_col_ra=ra\n")
    with pytest.raises(
        InputError, match=r": not a HATS catalog \(needs a properties file and partition_info.csv\)$"
    ):
        read_catalog(
            tmp_path, columns="gaia", region=SkyCircle(0.0, 0.0, 1.0), mag_system="", vega_to_ab=VEGA_TO_AB
        )


def test_hats_needs_a_region(big_hats):
    with pytest.raises(InputError, match=r"a HATS catalog is read by region"):
        read_catalog(big_hats[0], columns="gaia", mag_system="", vega_to_ab=VEGA_TO_AB)


def test_hats_missing_column_lists_what_it_has(big_hats):
    with pytest.raises(
        InputError,
        match=r"catalog lacks column\(s\) id \(catalog.columns.id\), coord_ra .*; "
        r"it has: source_id, ra, dec, phot_g_mean_mag$",
    ):
        read_catalog(
            big_hats[0],
            columns="lsst_refcat",
            region=SkyCircle(150.0, 2.0, 0.5),
            mag_system="",
            vega_to_ab=VEGA_TO_AB,
        )
