"""The exposures table: reading it and checking its columns.

The workflow's rules (``rules/common.smk``) use this module while building the DAG, so it imports
nothing heavier than the standard library and PyYAML.

The table is tab-separated text with a header line. Whole lines that start with ``#`` are comments
and blank lines are skipped; a ``#`` anywhere else is part of a value, as file names may hold one.
"""

import csv
from pathlib import Path

import yaml

from .errors import InputError

__all__ = [
    "TABLE_SCHEMA",
    "read_table",
    "table_columns",
    "check_columns",
]

#: The row schema of the exposures table, shipped with the workflow.
TABLE_SCHEMA = Path(__file__).resolve().parents[1] / "config" / "exposures.schema.yaml"


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
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.startswith("#")]
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
        rows.append(dict(zip(columns, fields + [""] * (len(columns) - len(fields)))))
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
