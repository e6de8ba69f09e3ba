"""Safe file output (every product is written under a temporary name and renamed when complete) and
the provenance cards of the products' headers (input files, software versions)."""

import contextlib
import errno
import hashlib
import os
import urllib.parse
from pathlib import Path

from astropy.io import fits

from .errors import InputError

__all__ = ["ESCAPED_PATH_PREFIX", "atomic_output", "input_cards", "open_fits", "path_card_value",
           "path_from_card", "sha256_file", "software_cards"]

#: Start of a header card value that holds an escaped path (see :func:`path_card_value`).
ESCAPED_PATH_PREFIX = "pct-utf8:"

# kept as they are in an escaped path: printable ASCII but the space (FITS drops trailing ones) and
# the escape character itself
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def path_card_value(path):
    """The value of a header card that names a file: the path, escaped where FITS cannot hold it.

    A FITS header holds printable ASCII only (and drops trailing spaces). A path made of printable
    ASCII, without a trailing space and not starting with :data:`ESCAPED_PATH_PREFIX`, is written
    as it is. Any other path (e.g. ``données/e1.fits``) is written as ``pct-utf8:`` followed by
    its bytes (UTF-8 on Linux and macOS) percent-encoded: every byte that is not printable ASCII,
    the space and ``%`` itself become ``%XX``, e.g. ``pct-utf8:donn%C3%A9es/e1.fits``. A long value is
    split over CONTINUE cards by astropy. :func:`path_from_card` turns the value back into the path.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str

    Examples
    --------
    >>> path_card_value("data/e1.fits")
    'data/e1.fits'
    >>> path_card_value("données/50%.fits")
    'pct-utf8:donn%C3%A9es/50%25.fits'
    >>> path_from_card('pct-utf8:donn%C3%A9es/50%25.fits')
    'données/50%.fits'
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    plain = all(" " <= c <= "~" for c in text) and not text.endswith(" ")
    if plain and not text.startswith(ESCAPED_PATH_PREFIX):
        return text
    return ESCAPED_PATH_PREFIX + urllib.parse.quote_from_bytes(os.fsencode(text), safe=_SAFE)


def path_from_card(value):
    """The path a header card value written by :func:`path_card_value` names.

    Parameters
    ----------
    value : str
        The card's value.

    Returns
    -------
    str
    """
    value = str(value)
    if not value.startswith(ESCAPED_PATH_PREFIX):
        return value
    return os.fsdecode(urllib.parse.unquote_to_bytes(value[len(ESCAPED_PATH_PREFIX):]))


def input_cards(paths, *, digests=None):
    """Header cards naming the input files and their SHA-256: ``INFILEn`` / ``INSHAn``.

    ``INFILEn`` holds the path as :func:`path_card_value` writes it.

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
        cards[f"INFILE{i}"] = path_card_value(path)
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
