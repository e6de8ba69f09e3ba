"""The exposures table: reading (comments, '#' in values), columns, detector ids by name or header,
and images listed under two exposure ids."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from brightstamps import exposures_table as bs_table
from brightstamps.camera import CAMERA_DIR, load_camera, load_detector_names
from brightstamps.errors import InputError

# reading


def test_hash_in_a_value_is_kept_and_only_whole_lines_starting_with_hash_are_comments(tmp_path):
    table = tmp_path / "exposures.tsv"
    table.write_text(
        "# my exposures\nexposure\timage\tband\tdetector\n\n"
        "e1\tdata/run#3/e1.fits\tr\t0\n#e2\tskipped.fits\tr\t1\n"
        "e3\te{}3.fits\tg\t2\n"
    )
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
    assert columns[0] == "exposure" and rows == [
        {"exposure": "e1", "image": "e1.fits", "band": "r", "detector": "0", "sky_model": ""}
    ]
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
    assert required == ["exposure", "image", "band"]
    msg = (
        "t.tsv: unknown column(s) varaince; allowed: exposure, image, band, detector, mask, variance, "
        "weight, hdu, sky_model, format"
    )
    with pytest.raises(InputError, match=re.escape(msg)):
        bs_table.check_columns(["exposure", "image", "band", "detector", "varaince"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: unknown column\(s\) 'band ', Band; allowed"):
        bs_table.check_columns(["exposure", "image", "band ", "Band"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: missing column\(s\) band; it has exposure, image"):
        bs_table.check_columns(["exposure", "image"], source="t.tsv")
    with pytest.raises(InputError, match=r"t.tsv: column\(s\) image appear more than once in the header"):
        bs_table.check_columns(["exposure", "image", "band", "image"], source="t.tsv")
    bs_table.check_columns(["exposure", "image", "band"], source="t.tsv")  # detector may be left out


def test_the_schema_rejects_unknown_columns_itself():
    schema = yaml.safe_load(bs_table.TABLE_SCHEMA.read_text())
    assert schema["additionalProperties"] is False
    assert re.fullmatch(schema["properties"]["detector"]["pattern"], "")
    assert re.fullmatch(schema["properties"]["detector"]["pattern"], "S4")
    assert re.fullmatch(schema["properties"]["detector"]["pattern"], "1_53")


# detectors


def test_detector_names_map_to_the_ids_of_the_camera_tables():
    decam = load_detector_names("decam")
    assert (decam["S4"], decam["S9"], decam["S29"], decam["N1"], decam["N31"]) == (28, 20, 1, 32, 62)
    assert sorted(decam.values()) == sorted(load_camera("decam")) == list(range(1, 63))
    hsc = load_detector_names("hsc")
    assert (hsc["1_53"], hsc["0_09"], hsc["0_48"]) == (0, 56, 111)
    assert sorted(hsc.values()) == list(range(112))
    assert load_detector_names("demo") == {}
    assert bs_table.resolve_detector("S4", camera="decam") == 28
    assert bs_table.resolve_detector("n31", camera="decam") == 62  # case does not matter
    assert bs_table.resolve_detector("0_09", camera="hsc") == 56
    assert bs_table.resolve_detector("20", camera="decam") == 20  # an integer is an id, not a name
    assert bs_table.resolve_detector("-3") == -3
    assert bs_table.resolve_detector("") is None


def test_names_in_the_tables_agree_with_the_comments_of_the_yaw_tables():
    """Each yaw line names its detector in a comment (copied from LSST's camera.py); the map agrees."""
    for camera in ("decam", "hsc"):
        text = (CAMERA_DIR / f"{camera}.yaml").read_text()
        yaws, names = text.split("\ndetector_names:\n")
        commented = {m[1]: int(m[0]) for m in re.findall(r"^  (\d+): \S+\s+# (\S+)", yaws, re.M)}
        written = re.findall(r'^  "([^"]+)": (\d+)$', names, re.M)
        # no name written twice (YAML would keep the last)
        assert len(written) == len({n for n, _ in written}), camera
        assert load_detector_names(camera) == commented, camera


def test_an_unknown_detector_name_is_one_line():
    with pytest.raises(
        InputError,
        match=r"detector 'S40' is neither an integer id nor a detector name of "
        r"camera decam \(detector_names of brightstamps/cameras/decam.yaml\)",
    ):
        bs_table.resolve_detector("S40", camera="decam")
    with pytest.raises(
        InputError,
        match="detector 'S4' is not an integer id and camera is not set "
        r"\(set camera to decam, whose table names it\)",
    ):
        bs_table.resolve_detector("S4")
    with pytest.raises(InputError, match=r"detector 'X9' is not an integer id .*\(no camera names it\)"):
        bs_table.resolve_detector("X9")


def test_malformed_detector_names_are_refused(tmp_path):
    yaw = "camera: c\ndetector_yaw_deg: {1: 0.0, 2: 0.0}\n"
    for names, message in (
        ('{"7": 1}', "name '7' is an integer"),
        ("{a: 1, A: 2}", r"name\(s\) A appear more"),
        ("{a: 3}", r"id\(s\) 3 are not in detector_yaw_deg"),
        ("{a: b}", "must map detector"),
    ):
        (tmp_path / "c.yaml").write_text(yaw + f"detector_names: {names}\n")
        with pytest.raises(InputError, match=f"c.yaml: detector_names.*{message}|c.yaml: {message}"):
            load_detector_names("c", directory=tmp_path)


def test_the_detector_is_read_from_the_real_decam_headers(shared_data):
    """DECam CP files carry CCDNUM (and a DETECTOR card that is the CCD's serial, not an id)."""
    images = sorted((shared_data / "decam_testcase6" / "images").glob("*_ooi_*.fits"))
    assert len(images) == 6  # (an empty glob would check nothing)
    for path in images:
        expected = {"S4": 28, "S9": 20}[path.name.split(".")[-2]]
        assert bs_table.header_detector(str(path), fmt="decam_cp") == expected
        assert bs_table.header_detector(str(path), fmt="decam_cp", hdu="1") == expected
        assert bs_table.header_detector(str(path), fmt="fits") == expected  # first 2-D HDU
        assert fits.getheader(path, 1)["DETECTOR"].startswith("S3-")  # the serial


def _write_calexp(path, primary_cards, image_cards=()):
    primary = fits.PrimaryHDU()
    for k, v in primary_cards:
        primary.header[k] = v
    image = fits.ImageHDU(np.zeros((4, 4), np.float32))
    for k, v in image_cards:
        image.header[k] = v
    fits.HDUList([primary, image]).writeto(path)
    return str(path)


def test_the_detector_from_ccdnum_then_detector_of_the_header_each_format_reads(tmp_path):
    primary = _write_calexp(tmp_path / "a.fits", [("DETECTOR", 3)])
    assert bs_table.header_detector(primary, fmt="lsst_calexp") == 3
    image = _write_calexp(tmp_path / "b.fits", [], [("DETECTOR", 5)])
    assert bs_table.header_detector(image, fmt="lsst_calexp") == 5
    both = _write_calexp(tmp_path / "c.fits", [("DETECTOR", 5)], [("CCDNUM", 7)])
    assert bs_table.header_detector(both, fmt="lsst_calexp") == 7
    named = _write_calexp(tmp_path / "d.fits", [("DETECTOR", "S4")])
    assert bs_table.header_detector(named, camera="decam", fmt="lsst_calexp") == 28
    with pytest.raises(InputError, match=r"d.fits \(HDU 1\): card DETECTOR = 'S4': detector 'S4' is not an "):
        bs_table.header_detector(named, fmt="lsst_calexp")
    serial = _write_calexp(tmp_path / "e.fits", [("DETECTOR", "S3-358_135960-19-4")])
    with pytest.raises(InputError, match=r"e.fits \(HDU 1\): card DETECTOR = 'S3-358_135960-19-4': detector"):
        bs_table.header_detector(serial, camera="decam", fmt="lsst_calexp")
    flag = _write_calexp(tmp_path / "f.fits", [("CCDNUM", True)])
    with pytest.raises(InputError, match=r"f.fits \(HDU 1\): card CCDNUM = True is not a detector id"):
        bs_table.header_detector(flag, fmt="lsst_calexp")


def test_a_header_without_either_card_is_one_line(shared_data):
    """The real HSC calexp carries neither card."""
    hsc = shared_data / "lsst_calexp_layout" / "HSC-0908120-056-small.fits"
    msg = f"{hsc} (HDU 1): the detector cell is empty and the header has no CCDNUM or DETECTOR card; give the"
    with pytest.raises(InputError, match=re.escape(msg)):
        bs_table.header_detector(str(hsc), fmt="lsst_calexp")


def test_the_module_imports_no_astropy_or_snakemake(repo):
    """rules/common.smk imports it to build the DAG: reading headers loads astropy only when needed."""
    code = (
        "import sys; import brightstamps.exposures_table; "
        "print(sorted(m for m in ('astropy', 'snakemake', 'numpy', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    ).stdout
    assert out.strip() == "[]"


# the same image twice


def _bytes(n, seed):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_the_same_file_under_two_ids_is_reported(tmp_path):
    (tmp_path / "a.fits").write_bytes(_bytes(300_000, 1))
    os.symlink(tmp_path / "a.fits", tmp_path / "link.fits")
    a, link = str(tmp_path / "a.fits"), str(tmp_path / "link.fits")
    rows = [
        ("e1", a, "lsst_calexp", ""),
        ("e2", link, "lsst_calexp", ""),
        ("e3", a, "lsst_calexp", ""),
        ("e4", str(tmp_path / "missing.fits"), "lsst_calexp", ""),
    ]
    assert bs_table.duplicate_images(rows) == [[("e1", a), ("e2", link), ("e3", a)]]


def test_two_copies_with_identical_bytes_are_reported(tmp_path):
    for size in (1000, 100_000, 300_000):  # within the head, head and tail, and beyond both
        data = _bytes(size, size)
        (tmp_path / f"a{size}.fits").write_bytes(data)
        (tmp_path / f"b{size}.fits").write_bytes(data)
        rows = [(e, str(tmp_path / f"{n}{size}.fits"), "fits", "") for e, n in (("x", "a"), ("y", "b"))]
        assert bs_table.duplicate_images(rows) == [[("x", rows[0][1]), ("y", rows[1][1])]], size


def test_files_of_one_size_that_differ_only_in_the_middle_are_not_reported(tmp_path):
    data = bytearray(_bytes(400_000, 2))
    (tmp_path / "a.fits").write_bytes(bytes(data))
    data[200_000] ^= 1  # outside the first and last 64 KiB
    (tmp_path / "b.fits").write_bytes(bytes(data))
    rows = [("x", str(tmp_path / "a.fits"), "fits", ""), ("y", str(tmp_path / "b.fits"), "fits", "")]
    assert bs_table.duplicate_images(rows) == []


def test_only_same_size_candidates_are_read_and_whole_only_when_their_ends_agree(tmp_path, monkeypatch):
    reads = []
    real = bs_table._read_key
    monkeypatch.setattr(
        bs_table,
        "_read_key",
        lambda path, size, part: reads.append((Path(path).name, part)) or real(path, size, part),
    )
    (tmp_path / "a.fits").write_bytes(_bytes(300_000, 3))
    (tmp_path / "b.fits").write_bytes(_bytes(300_000, 4))  # same size, other bytes from the start
    (tmp_path / "c.fits").write_bytes(_bytes(200_000, 5))  # a size of its own: never read
    rows = [(n, str(tmp_path / f"{n}.fits"), "fits", "") for n in "abc"]
    assert bs_table.duplicate_images(rows) == []
    assert sorted(reads) == [("a.fits", "head"), ("b.fits", "head")]


def test_different_hdus_of_one_file_are_different_exposures(tmp_path):
    path = str(tmp_path / "whole.fits")
    Path(path).write_bytes(_bytes(1000, 6))
    rows = [
        ("s4", path, "decam_cp", "S4"),
        ("s9", path, "decam_cp", "S9"),
        ("s4b", path, "decam_cp", "s4"),
        ("one", path, "decam_cp", ""),
        ("one_b", path, "decam_cp", "1"),
    ]
    expected = [[("one", path), ("one_b", path)], [("s4", path), ("s4b", path)]]
    assert bs_table.duplicate_images(rows) == expected
