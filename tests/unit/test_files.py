"""Safe file output (atomic_output) and the one home for paths in header cards."""

import os
import stat

from brightstamps.files import atomic_output


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
    assert calls == [("fsync", "file", ino), ("replace", ino, os.fspath(target)),
                     ("fsync", "dir", target.parent.stat().st_ino)]
    assert target.read_bytes() == b"data"
