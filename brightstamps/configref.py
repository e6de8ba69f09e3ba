"""The configuration reference and the schema's defaults, both read from the JSON schema.

The reference is rendered from the schema so it is never written twice; the defaults serve the
tools that run without a config (the simulator's command line).
"""

import copy
import sys
from pathlib import Path

import yaml

__all__ = ["SCHEMA", "render_reference", "schema_defaults"]

#: The workflow's config schema, beside the package: the one home of every default.
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "config.schema.yaml"


def _type(prop):
    if "enum" in prop:
        return " | ".join(f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "")
    if isinstance(kind, list):  # e.g. a named scheme (else: enum) or a mapping (then: properties)
        names = [
            ", ".join(f"`{v}`" for v in prop.get("else", {}).get("enum", [])) or k if k == "string" else k
            for k in kind
        ]
        return " or ".join(names)
    if kind == "array":
        return f"list of {prop.get('items', {}).get('type', 'values')}"
    return kind


def _range(prop):
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            parts.append(f"{sign} {prop[key]}")
    items = prop.get("items", {})
    for key, sign in (("minimum", ">="),):
        if key in items:
            parts.append(f"each {sign} {items[key]}")
    if "minItems" in prop and prop.get("minItems") == prop.get("maxItems"):
        parts.append(f"{prop['minItems']} items")
    return ", ".join(parts)


def _rows(properties, prefix=""):
    for name, prop in properties.items():
        key = f"{prefix}{name}"
        if prop.get("type") == "object" and "properties" in prop:
            yield key, "object", "", "", " ".join(prop.get("description", "").split())
            yield from _rows(prop["properties"], prefix=f"{key}.")
            continue
        if "properties" in prop.get("then", {}):  # a string or, when an object, these fields
            yield key, _type(prop), "", "", " ".join(prop.get("description", "").split())
            yield from _rows(prop["then"]["properties"], prefix=f"{key}.")
            continue
        default = prop.get("default", "")
        default = "`{}`" if default == {} else (f"`{default}`" if default != "" else "")
        yield key, _type(prop), _range(prop), default, " ".join(prop.get("description", "").split())


def schema_defaults(schema_path=SCHEMA):
    """The config that an empty config file gives: every field with a default.

    The fields are filled in as Snakemake's ``validate`` does (an object's fields inside its default).

    Parameters
    ----------
    schema_path : str or pathlib.Path
        ``config/config.schema.yaml``.

    Returns
    -------
    dict
        Field -> default; fields without one (``boresight.ra``) are left out.

    Examples
    --------
    >>> schema_defaults()["boresight"]
    {'ra_key': 'BORE-RA', 'dec_key': 'BORE-DEC', 'ra_unit': 'deg'}
    """
    return _defaults(yaml.safe_load(Path(schema_path).read_text())["properties"])


def _defaults(properties):
    out = {}
    for name, prop in properties.items():
        if "default" not in prop:
            continue
        value = copy.deepcopy(prop["default"])
        if isinstance(value, dict) and "properties" in prop:
            value = {**_defaults(prop["properties"]), **value}
        out[name] = value
    return out


def render_reference(schema_path):
    """Markdown tables of every config field and every exposures-table column.

    Parameters
    ----------
    schema_path : str or pathlib.Path
        ``config/config.schema.yaml``; the exposures table's schema, ``exposures.schema.yaml``,
        is read from the same directory when it is there.

    Returns
    -------
    str
    """
    schema_path = Path(schema_path)
    schema = yaml.safe_load(schema_path.read_text())
    lines = [
        "# Configuration reference",
        "",
        "Generated from `config/config.schema.yaml` and `config/exposures.schema.yaml` by `make config-doc`",
        "(a test checks it is current). Every field is optional: a missing field takes its default.",
        "",
        "| field | type | range | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for key, kind, rng, default, desc in _rows(schema["properties"]):
        desc = desc.replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | {rng} | {default} | {desc} |")
    table_schema = schema_path.parent / "exposures.schema.yaml"
    if table_schema.is_file():
        table = yaml.safe_load(table_schema.read_text())
        required = set(table.get("required", []))
        lines += [
            "",
            "## Exposures table",
            "",
            "The TSV file named by `exposures`: one row per exposure, one column per field below (any other",
            "column is an error; empty cells take the default). Whole lines starting with `#` are comments.",
            "",
            "| column | required | values | default | meaning |",
            "|---|---|---|---|---|",
        ]
        for name, prop in table["properties"].items():
            values = " \\| ".join(f"`{v}`" for v in prop["enum"]) if "enum" in prop else ""
            default = f"`{prop['default']}`" if prop.get("default", "") != "" else ""
            desc = " ".join(prop.get("description", "").split()).replace("|", "\\|")
            lines.append(
                f"| `{name}` | {'yes' if name in required else 'no'} | {values} | {default} | {desc} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_reference(sys.argv[1]))
