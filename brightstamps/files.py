"""Safe file output and the provenance cards of the products' headers.

Every product is written under a temporary name and renamed when complete; its header names the
input files and the software versions.
"""

import contextlib
import errno
import hashlib
import io
import os
import urllib.parse
import warnings
from pathlib import Path

from astropy.io import fits

from .errors import InputError

__all__ = [
    "ESCAPED_PATH_PREFIX",
    "atomic_output",
    "check_fits_layout",
    "input_cards",
    "open_fits",
    "path_card_value",
    "path_from_card",
    "sha256_file",
    "software_cards",
]

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
    return os.fsdecode(urllib.parse.unquote_to_bytes(value[len(ESCAPED_PATH_PREFIX) :]))


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

    return {
        "BSVERS": (__version__, "brightstamps version"),
        "NPVERS": (numpy.__version__, "numpy version"),
        "SPVERS": (scipy.__version__, "scipy version"),
        "APVERS": (astropy.__version__, "astropy version"),
    }


def sha256_file(path):
    """Hex SHA-256 of a file's bytes (for provenance in output headers)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_fits(path, *, what="file", memmap=False):
    """Open a FITS file, or fail with one line naming it: missing, not readable as FITS, or corrupt.

    Every HDU's header is read and checked against the file's bytes before any data is read (see
    :func:`check_fits_layout`), so a header whose BITPIX or NAXISn cards do not match its data
    gives one line naming the HDU, not a huge allocation or a later unrelated error. The
    warnings astropy gives while reading the headers are repeated if the file is sound, and
    dropped (the one line says it better) when it is not.

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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=memmap)
            try:
                check_fits_layout(hdul, path)
            except BaseException:
                hdul.close()
                raise
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except OSError as err:
        raise InputError(_unreadable(path, err)) from None
    try:
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    except BaseException:  # a warning turned into an error
        hdul.close()
        raise
    return hdul


#: The end of the one-line messages of :func:`check_fits_layout`.
_LAYOUT_HINT = "a truncated file, or a BITPIX or NAXISn card that does not match the data"


def _structure(header):
    """The cards that set an HDU's data size, for messages: ``BITPIX = -32, NAXIS1 = 300, ...``."""
    keys = ["BITPIX"] + [f"NAXIS{i}" for i in range(1, int(header.get("NAXIS", 0) or 0) + 1)]
    keys += [k for k in ("PCOUNT", "GCOUNT") if header.get(k, 0) not in (0, 1)]
    return ", ".join(f"{k} = {header.get(k)!r}" for k in keys)


def _unreadable(path, err):
    """The message for a file astropy cannot open: the HDU after the first, if that one is sound.

    (Without an EXTEND card in the primary header astropy reads the second header on opening.)
    """
    try:
        with open(path, "rb") as f:
            header = fits.Header.fromfile(io.BytesIO(f.read(2880 * 360)))  # (12960 cards at most)
    except Exception:  # not even a first header: not FITS at all
        header = None
    if header is None or next(iter(header), None) != "SIMPLE":
        return f"{path}: not a readable FITS file ({err})"
    return (
        f"{path}: the header of HDU 1, after the data of HDU 0 ({_structure(header)}), cannot be read "
        f"({err}): {_LAYOUT_HINT}"
    )


def _plain_fits_size(path):
    """Size in bytes of a plain (not gzip- or otherwise compressed) FITS file, else None."""
    try:
        with open(path, "rb") as f:
            plain = f.read(6) == b"SIMPLE"
        return os.path.getsize(path) if plain else None
    except (OSError, TypeError):  # not a path (a file object)
        return None


def check_fits_layout(hdul, path):
    """Check that the HDUs' headers describe the file's bytes, without reading the data.

    Each header's BITPIX and NAXISn cards give the size of its data, and so where the next
    header starts. A card changed by a corrupt write shows as the next "header" not starting
    with ``XTENSION`` or not readable, as data running past the end of the file (a file cut
    short, or NAXISn enlarged: nothing is allocated), as data bytes where the standard puts the
    zeros that pad the data to a 2880-byte block, or as bytes after the last HDU that are neither
    an HDU nor padding. Sizes and padding are checked only for plain files (a gzip-compressed
    file's size says nothing about them); tile-compressed HDUs are checked as stored. A card
    changed to a value of the same size (BITPIX -32 to 32) cannot be seen this way.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        Freshly opened (lazily loaded) from *path*.
    path : str or os.PathLike
        The file, for the size and the message.

    Raises
    ------
    InputError
        One line naming the file, the HDU and its BITPIX / NAXISn cards.
    """
    count = 0
    while True:  # read the headers one by one (no data), to name the one that cannot be read
        try:
            hdul[count]
        except IndexError:
            break
        except (OSError, ValueError, fits.VerifyError) as err:
            msg = (
                f"{path}: the header of HDU {count}, after the data of HDU {count - 1} "
                f"({_structure(hdul[count - 1].header)}), cannot be read ({err}): {_LAYOUT_HINT}"
            )
            raise InputError(msg) from None
        count += 1
    size = _plain_fits_size(path)
    end = 0
    for index, hdu in enumerate(hdul):
        if index and next(iter(hdu.header), None) != "XTENSION":
            msg = (
                f"{path}: HDU {index} (at byte {end}, after the data of HDU {index - 1}: "
                f"{_structure(hdul[index - 1].header)}) does not start with an XTENSION card: "
                f"{_LAYOUT_HINT}"
            )
            raise InputError(msg)
        info = hdu.fileinfo()  # (not HDUList.fileinfo: it "fixes" unparsable cards in place)
        end = info["datLoc"] + info["datSpan"]
        if size is None:
            continue
        # (a plain HDU's last block may lack its padding: astropy reads it)
        data_end = end if isinstance(hdu, fits.CompImageHDU) else info["datLoc"] + hdu.header.data_size
        nbytes = data_end - info["datLoc"]
        if data_end > size:
            msg = (
                f"{path}: HDU {index} ({_structure(hdu.header)}) needs {nbytes} bytes of data but the "
                f"file ends {max(size - info['datLoc'], 0)} bytes after its header: {_LAYOUT_HINT}"
            )
            raise InputError(msg)
        padding = _bytes_at(path, data_end, min(end, size) - data_end)
        if padding.strip(b"\0 "):  # (zeros; blanks in ASCII tables)
            msg = (
                f"{path}: HDU {index} ({_structure(hdu.header)}): the {len(padding)} bytes after its "
                f"{nbytes} bytes of data, which pad it to a 2880-byte block, are not zeros: "
                f"{_LAYOUT_HINT}"
            )
            raise InputError(msg)
    if size is not None and size > end and _bytes_at(path, end, 2880).strip(b"\0 "):
        # (zeros or blanks after the last HDU are padding: astropy warns)
        msg = (
            f"{path}: the {size - end} bytes after the data of HDU {index} "
            f"({_structure(hdul[index].header)}) are not a FITS HDU: {_LAYOUT_HINT}"
        )
        raise InputError(msg)


def _bytes_at(path, offset, count):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(max(count, 0))


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
