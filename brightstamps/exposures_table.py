"""The exposures table: reading it, checking its columns, detector ids, images listed twice.

The workflow's rules (``rules/common.smk``) use this module while building the DAG, so it imports
nothing heavier than the standard library and PyYAML; astropy is imported only by
:func:`header_detector`, which reads an image header.

The table is tab-separated text with a header line. Whole lines that start with ``#`` are comments
and blank lines are skipped; a ``#`` anywhere else is part of a value, as file names may hold one.
"""

import csv
import hashlib
import os
import re
import stat
from collections import Counter
from pathlib import Path

import yaml

from . import formats
from .camera import camera_names, load_detector_names
from .errors import InputError

__all__ = [
    "TABLE_SCHEMA",
    "HEADER_DETECTOR_CARDS",
    "read_table",
    "table_columns",
    "check_columns",
    "exposure_id_pattern",
    "check_exposure_ids",
    "resolve_detector",
    "header_detector",
    "duplicate_images",
]

#: The row schema of the exposures table, shipped with the workflow.
TABLE_SCHEMA = Path(__file__).resolve().parents[1] / "config" / "exposures.schema.yaml"

#: Header cards that give the detector id when the table's ``detector`` cell is empty, in order.
HEADER_DETECTOR_CARDS = ("CCDNUM", "DETECTOR")

# duplicate_images reads this much of each end of a same-size candidate before hashing it whole
_EDGE = 1 << 16


def read_table(path):
    """Read the exposures table.

    Parameters
    ----------
    path : str or os.PathLike
        The TSV file: a header line of column names, then one row per exposure. Lines starting with
        ``#`` and blank lines are skipped; fields may be quoted with ``"``. A row with fewer fields
        than the header has its last cells empty.

    Returns
    -------
    columns : list of str
        The header's column names.
    rows : list of dict
        One dict (column -> str) per row.
    lines : list of int
        Each row's line number in the file (1-based), for messages.

    Raises
    ------
    InputError
        If the file cannot be read as UTF-8 text, has no header line, or a row has more fields
        than the header (one line naming the file and the line).
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except OSError as err:
        raise InputError(f"{path}: the exposures table cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        msg = f"{path}: the exposures table is not UTF-8 text ({err.reason} at byte {err.start})"
        raise InputError(msg) from None
    numbered = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.startswith("#")
    ]
    if not numbered:
        raise InputError(f"{path}: the exposures table has no header line (exposure, image, band, ...)")
    # each line on its own: a quote never joins two lines, so the line numbers stay right
    (_, header_line), *body = numbered
    columns = next(csv.reader([header_line], delimiter="\t"))
    rows, lines = [], []
    for n, line in body:
        fields = next(csv.reader([line], delimiter="\t"))
        if len(fields) > len(columns):
            msg = f"{path} line {n}: {len(fields)} tab-separated fields, the header has {len(columns)}"
            raise InputError(msg)
        rows.append(dict(zip(columns, fields + [""] * (len(columns) - len(fields)), strict=True)))
        lines.append(n)
    return columns, rows, lines


def table_columns(schema=TABLE_SCHEMA):
    """The columns the exposures table may have, and those it must have.

    Parameters
    ----------
    schema : str or os.PathLike
        The table's row schema (JSON schema in YAML).

    Returns
    -------
    allowed : list of str
        Every column, in the schema's order.
    required : list of str
    """
    with open(schema) as f:
        data = yaml.safe_load(f)
    return list(data["properties"]), list(data.get("required", []))


def check_columns(columns, *, source, schema=TABLE_SCHEMA):
    """Fail with one line unless the header names each column once, only known ones, and every required one.

    An unknown column is an error rather than ignored: a misspelt optional column (``varaince``)
    would otherwise leave the file it names unread without a word.

    Parameters
    ----------
    columns : list of str
        The header's column names.
    source : str
        The table's path, for the message.
    schema : str or os.PathLike
        The table's row schema.

    Raises
    ------
    InputError
        Naming the repeated, unknown (with the allowed ones) or missing columns.
    """
    allowed, required = table_columns(schema)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InputError(f"{source}: column(s) {', '.join(repeated)} appear more than once in the header")
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        names = ", ".join(repr(c) if not c or c != c.strip() else c for c in unknown)
        raise InputError(f"{source}: unknown column(s) {names}; allowed: {', '.join(allowed)}")
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(missing)}; it has {', '.join(columns)}")


def exposure_id_pattern(schema=TABLE_SCHEMA):
    """The regular expression an exposure id must match: the row schema's, its one home.

    Examples
    --------
    >>> import re
    >>> [bool(re.match(exposure_id_pattern(), e)) for e in ("c0908120-056", "e 1", "..")]
    [True, False, False]
    """
    with open(schema) as f:
        return yaml.safe_load(f)["properties"]["exposure"]["pattern"]


def check_exposure_ids(rows, lines, *, source, schema=TABLE_SCHEMA):
    """Fail with one line unless every exposure id is well-formed and unique.

    The ids name directories and files (``results/<exposure>/``), so the schema allows letters,
    digits, ``.``, ``_`` and ``-`` only, and not ``.`` or ``..``. Checked before the schema
    validation, which would name the row but not say why.

    Parameters
    ----------
    rows : list of dict
        The table's rows (:func:`read_table`).
    lines : list of int
        Each row's line number in the file.
    source : str
        The table's path, for the message.
    schema : str or os.PathLike
        The table's row schema, which holds the ids' pattern.

    Raises
    ------
    InputError
        Naming the first row with a malformed id, or the ids that appear more than once.
    """
    pattern = re.compile(exposure_id_pattern(schema))
    for row, line in zip(rows, lines, strict=True):
        if not pattern.match(row["exposure"]):
            msg = (
                f"{source} row {line}: exposure id {row['exposure']!r} may only hold letters, digits, "
                "'.', '_' and '-' (and is not '.' or '..')"
            )
            raise InputError(msg)
    counts = Counter(row["exposure"] for row in rows)
    dupes = sorted(e for e, n in counts.items() if n > 1)
    if dupes:
        raise InputError(f"{source}: exposure id(s) {', '.join(dupes)} appear more than once")


def _cameras_naming(name):
    return [cam for cam in camera_names() if name.upper() in {k.upper() for k in load_detector_names(cam)}]


def resolve_detector(value, *, camera=""):
    """The integer detector id that a ``detector`` cell (or a header card's text) gives.

    Parameters
    ----------
    value : str
        An integer id, a detector name of camera *camera*'s table (``detector_names``; case does
        not matter), or empty.
    camera : str
        The config's ``camera`` (``""`` for none).

    Returns
    -------
    int or None
        None for an empty *value* (the caller reads the image header).

    Raises
    ------
    InputError
        If *value* is a name that the camera table does not list (or no camera is set).

    Examples
    --------
    >>> resolve_detector("S4", camera="decam"), resolve_detector("28"), resolve_detector("")
    (28, 28, None)
    """
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if camera:
        names = {k.upper(): v for k, v in load_detector_names(camera).items()}
        if text.upper() in names:
            return names[text.upper()]
        msg = (
            f"detector {text!r} is neither an integer id nor a detector name of camera {camera} "
            f"(detector_names of brightstamps/cameras/{camera}.yaml)"
        )
        raise InputError(msg)
    others = _cameras_naming(text)
    hint = f"set camera to {' or '.join(others)}, whose table names it" if others else "no camera names it"
    raise InputError(f"detector {text!r} is not an integer id and camera is not set ({hint})")


def _header_card(header, key, *, source):
    try:
        return header.get(key)
    except Exception as err:  # astropy raises several types for a card it cannot parse
        raise InputError(f"{source}: card {key} cannot be read ({err})") from None


def header_detector(image, *, fmt, hdu=None, camera=""):
    """The detector id of an exposure from its image header: ``CCDNUM``, else ``DETECTOR``.

    The header is the one each format reads (:func:`brightstamps.exposure.read_exposure_header`):
    the primary header merged with the image HDU's (:func:`brightstamps.formats.find_hdu`). A
    card may hold an integer, or a detector name of camera *camera*'s table.

    Parameters
    ----------
    image : str
        The image file.
    fmt : str
        Its format.
    hdu : str, int or None
        The ``hdu`` column.
    camera : str
        The config's ``camera``, for names.

    Returns
    -------
    int

    Raises
    ------
    InputError
        If the file cannot be read, or neither card is there or gives an id (one line naming
        the file, the HDU and the cards).
    """
    from .exposure import _merged_metadata  # astropy: only when a header is read
    from .files import open_fits

    formats.format_of(fmt, source=image)
    with open_fits(image) as hdul:
        index = formats.find_hdu(hdul, fmt=fmt, hdu=hdu, path=image)
        header = _merged_metadata(hdul[0].header, hdul[index].header) if index else hdul[0].header
        source = f"{image} (HDU {index})"
        for key in HEADER_DETECTOR_CARDS:
            value = _header_card(header, key, source=source)
            if value is None:
                continue
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            try:
                found = resolve_detector(value, camera=camera) if isinstance(value, str) else None
            except InputError as err:
                raise InputError(f"{source}: card {key} = {value!r}: {err}") from None
            if found is None:
                raise InputError(f"{source}: card {key} = {value!r} is not a detector id")
            return found
    cards = " or ".join(HEADER_DETECTOR_CARDS)
    msg = f"{source}: the detector cell is empty and the header has no {cards} card; give the detector"
    raise InputError(msg)


def _read_key(path, size, part):
    """A digest of *part* (``head``, ``tail`` or ``all``) of a file of *size* bytes; None if unreadable."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            if part == "tail":
                f.seek(max(0, size - _EDGE))
            if part == "all":
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(f.read(_EDGE))
    except OSError:
        return None
    return h.hexdigest()


def _split(groups, key):
    """Each group split by *key*; parts of one member, or whose key is None, dropped."""
    out = []
    for group in groups:
        parts = {}
        for member in group:
            k = key(member)
            if k is not None:
                parts.setdefault(k, []).append(member)
        out += [p for p in parts.values() if len(p) > 1]
    return out


def _hdu_read(fmt, hdu):
    """Which HDU a row reads, as written.

    An index and an EXTNAME of one HDU compare unequal; None is the first 2-D HDU.
    """
    spec = formats.format_of(fmt, source="")
    hdu = formats.parse_hdu(hdu) if spec.hdu_column else None
    if hdu is None:
        return spec.image_hdu
    return hdu.upper() if isinstance(hdu, str) else hdu


def duplicate_images(images):
    """Groups of exposures that read the same image: one file, or files with identical bytes.

    Only files that could be equal are read: files are grouped by size (a path, symbolic link or
    hard link to one file is the same file outright), and same-size files are compared by the
    SHA-256 of their first 64 KiB, then of their last 64 KiB, and only then of their whole bytes.
    Rows that read different HDUs of one file (the ``hdu`` column) are different exposures.

    Parameters
    ----------
    images : iterable of tuple
        ``(exposure, path, fmt, hdu)`` per row: the exposure id, image file, format and ``hdu``
        column. Files that do not exist (yet) are left out.

    Returns
    -------
    list of list of tuple
        Each group's ``(exposure, path)`` pairs, sorted; groups sorted by their first exposure.
    """
    files = {}  # (device, inode) -> [(exposure, path, hdu read), ...]
    sizes, paths = {}, {}
    for exposure, path, fmt, hdu in images:
        try:
            st = os.stat(path)
        except OSError:  # not there (yet): Snakemake names it, or a rule makes it
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        ident = (st.st_dev, st.st_ino)
        files.setdefault(ident, []).append((exposure, str(path), _hdu_read(fmt, hdu)))
        sizes[ident] = st.st_size
        paths.setdefault(ident, str(path))
    groups = _split([list(files)], lambda i: sizes[i])
    groups = _split(groups, lambda i: _read_key(paths[i], sizes[i], "head"))
    # the head already covers a file of up to 64 KiB, the head and tail one of up to 128 KiB
    groups = _split(groups, lambda i: _read_key(paths[i], sizes[i], "tail") if sizes[i] > _EDGE else "")
    groups = _split(groups, lambda i: _read_key(paths[i], sizes[i], "all") if sizes[i] > 2 * _EDGE else "")
    grouped = {i for g in groups for i in g}
    found = []
    for idents in groups + [[i] for i in files if i not in grouped]:
        by_hdu = {}
        for ident in idents:
            for exposure, path, hdu in files[ident]:
                by_hdu.setdefault(hdu, []).append((exposure, path))
        found += [sorted(rows) for rows in by_hdu.values() if len(rows) > 1]
    return sorted(found)
