"""Safe file output: every product is written under a temporary name and renamed when complete."""

import contextlib
import errno
import hashlib
import os
from pathlib import Path

from astropy.io import fits

from .errors import InputError

__all__ = ["atomic_output", "input_cards", "open_fits", "sha256_file", "software_cards"]


def input_cards(paths, *, digests=None):
    """Header cards naming the input files and their SHA-256: ``INFILEn`` / ``INSHAn``.

    Parameters
    ----------
    paths : list of str
        Input files, in a fixed order (empty entries are skipped).
    digests : dict, optional
        Known SHA-256 by entry of *paths*, used instead of hashing (e.g. a catalog that is a
        glob pattern, a HATS directory or an installed package).

    Returns
    -------
    dict
        FITS keyword -> value.
    """
    cards = {}
    for i, path in enumerate((p for p in paths if p), start=1):
        cards[f"INFILE{i}"] = str(path)
        cards[f"INSHA{i}"] = (digests or {}).get(path) or sha256_file(path)
    return cards


def software_cards():
    """Header cards with the versions of brightstamps and the libraries that shape the numbers."""
    import astropy
    import numpy
    import scipy

    from . import __version__

    return {"BSVERS": (__version__, "brightstamps version"), "NPVERS": (numpy.__version__, "numpy version"),
            "SPVERS": (scipy.__version__, "scipy version"), "APVERS": (astropy.__version__, "astropy version")}


def sha256_file(path):
    """Hex SHA-256 of a file's bytes (for provenance in output headers)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_fits(path, *, what="file", memmap=False):
    """Open a FITS file, or fail with one line naming it: missing, or not readable as FITS.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for the message (e.g. ``"sky model file"``).
    memmap : bool
        Memory-map the data (for reading sections).

    Returns
    -------
    astropy.io.fits.HDUList
    """
    try:
        return fits.open(path, memmap=memmap)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(f"{path}: not a readable FITS file ({err})") from None


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to *path*; rename it to *path* only if the block succeeds.

    A crash, an exception or a full disk inside the block leaves no file at *path* (and removes
    the temporary one), so a reader never sees a partial product. The temporary file is flushed
    to disk (``fsync``) before the rename and the directory after it (on POSIX), so that after a
    power cut *path* is either the old file or the whole new one, never an empty one.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.

    Yields
    ------
    pathlib.Path
        Temporary path in the same directory (same file system, so the rename is atomic).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp*"):  # left by a job that was killed (SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        _fsync_file(tmp)  # the data on disk before the name points to it
        os.replace(tmp, path)
        _fsync_directory(path.parent)  # the rename itself on disk
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _fsync_file(path):
    """Flush a file's data and metadata to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory):
    """Flush a directory's entries to the disk (POSIX; Windows cannot open a directory)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot sync a directory
            raise
    finally:
        os.close(fd)
