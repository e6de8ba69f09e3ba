"""The exposures table: reading (comments, '#' in values) and columns."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brightstamps import exposures_table as bs_table
from brightstamps.errors import InputError


# reading


def test_hash_in_a_value_is_kept_and_only_whole_lines_starting_with_hash_are_comments(tmp_path):
    table = tmp_path / "exposures.tsv"
    table.write_text("# my exposures\nexposure\timage\tband\tdetector\n\n"
                     "e1\tdata/run#3/e1.fits\tr\t0\n#e2\tskipped.fits\tr\t1\n"
                     "e3\te{}3.fits\tg\t2\n")
    columns, rows, lines = bs_table.read_table(table)
    assert columns == ["exposure", "image", "band", "detector"]
    assert [r["image"] for r in rows] == ["data/run#3/e1.fits", "e{}3.fits"]
    assert [r["band"] for r in rows] == ["r", "g"]
    assert lines == [4, 6]  # line numbers in the file, for messages


def test_short_rows_get_empty_cells_and_long_rows_are_named(tmp_path):
    table = tmp_path / "exposures.tsv"
    # a byte-order mark, and a row without the tab of its empty last cell
    table.write_text("\ufeffexposure\timage\tband\tdetector\tsky_model\ne1\te1.fits\tr\t0\n")
    columns, rows, _ = bs_table.read_table(table)
    assert columns[0] == "exposure" and rows == [{"exposure": "e1", "image": "e1.fits", "band": "r",
                                                  "detector": "0", "sky_model": ""}]
    table.write_text("exposure\timage\tband\tdetector\ne1\te1.fits\tr\t0\textra\n")
    with pytest.raises(InputError, match=r"exposures.tsv line 2: 5 tab-separated fields, the header has 4"):
        bs_table.read_table(table)
    table.write_text("# nothing but a comment\n")
    with pytest.raises(InputError, match="exposures.tsv: the exposures table has no header line"):
        bs_table.read_table(table)
    table.write_bytes(b"exposure\timage\tband\ne1\t\xff.fits\tr\n")
    with pytest.raises(InputError, match="exposures.tsv: the exposures table is not UTF-8 text"):
        bs_table.read_table(table)


# columns


def test_an_unknown_column_is_named_with_the_allowed_ones():
    allowed, required = bs_table.table_columns()
    assert allowed[:4] == ["exposure", "image", "band", "detector"] and "variance" in allowed
    assert required == ["exposure", "image", "band", "detector"]
    msg = ("t.tsv: unknown column(s) varaince; allowed: exposure, image, band, detector, mask, variance, "
           "weight, hdu, sky_model, format")
    with pytest.raises(InputError, match=re.escape(msg)):
        bs_table.check_columns(["exposure", "image", "band", "detector", "varaince"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: unknown column\(s\) 'band ', Band; allowed"):
        bs_table.check_columns(["exposure", "image", "band ", "Band"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: missing column\(s\) band, detector; it has exposure, image"):
        bs_table.check_columns(["exposure", "image"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: column\(s\) image appear more than once in the header"):
        bs_table.check_columns(["exposure", "image", "band", "image"], source="t.tsv")


def test_the_schema_rejects_unknown_columns_itself():
    schema = yaml.safe_load(bs_table.TABLE_SCHEMA.read_text())
    assert schema["additionalProperties"] is False


def test_the_module_imports_no_astropy_or_snakemake():
    """rules/common.smk imports it to build the DAG."""
    code = ("import sys; import brightstamps.exposures_table; "
            "print(sorted(m for m in ('astropy', 'snakemake', 'numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
