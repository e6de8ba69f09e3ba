"""Camera tables: each detector's yaw in the focal plane, from ``brightstamps/cameras/<camera>.yaml``.

A table holds ``camera`` (its name) and ``detector_yaw_deg`` (integer detector id -> yaw in
degrees, the rotation of the detector's x axis in the focal plane, as in LSST's camera
descriptions). The config's ``detector_yaw_deg`` overrides single entries. A table may also hold
``detector_names`` (detector name, e.g. DECam's ``S4``, -> detector id), so that the exposures
table can name a detector as the camera's files do.

The tables are package data (``pyproject.toml``), so an installed package has them; the config's
``camera: <name>`` names one.
"""

from pathlib import Path

import yaml

from .errors import InputError

__all__ = ["CAMERA_DIR", "camera_names", "detector_yaws", "load_camera", "load_detector_names"]

#: The camera tables, shipped inside the package.
CAMERA_DIR = Path(__file__).resolve().parent / "cameras"


def camera_names(directory=CAMERA_DIR):
    """Names of the camera tables in *directory* (file stems), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


def _read_table(name, directory):
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        msg = f"camera: no table {path}; available: {', '.join(camera_names(directory)) or 'none'}"
        raise InputError(msg)
    with open(path) as f:
        data = yaml.safe_load(f)
    return path, data if isinstance(data, dict) else {}


def load_camera(name, *, directory=CAMERA_DIR):
    """Read camera table *name*: detector id (int) -> yaw (deg).

    Parameters
    ----------
    name : str
        Camera name, the table's file stem (``demo``, ``decam``, ``hsc``).
    directory : str or pathlib.Path
        Where the tables are.

    Returns
    -------
    dict of int to float

    Raises
    ------
    InputError
        If the table is missing or malformed (one line naming the file).
    """
    path, data = _read_table(name, directory)
    table = data.get("detector_yaw_deg")
    if not isinstance(table, dict) or not table:
        raise InputError(
            f"{path}: needs a non-empty mapping detector_yaw_deg (detector id -> yaw in degrees)"
        )
    try:
        return {int(k): float(v) for k, v in table.items()}
    except (TypeError, ValueError):
        raise InputError(f"{path}: detector_yaw_deg must map integer detector ids to numbers") from None


def load_detector_names(name, *, directory=CAMERA_DIR):
    """Read camera table *name*'s detector names: name (str) -> detector id (int).

    Parameters
    ----------
    name : str
        Camera name, the table's file stem.
    directory : str or pathlib.Path
        Where the tables are.

    Returns
    -------
    dict of str to int
        As the table writes the names; empty if the table has no ``detector_names``.

    Raises
    ------
    InputError
        If the table is missing, or its names are not unique (ignoring case), are integers (they
        would be taken for ids) or map to ids that ``detector_yaw_deg`` does not list.

    Examples
    --------
    >>> load_detector_names("decam")["S4"]
    28
    """
    path, data = _read_table(name, directory)
    table = data.get("detector_names", {})
    if not (isinstance(table, dict) and all(isinstance(k, str) and type(v) is int for k, v in table.items())):
        msg = f"{path}: detector_names must map detector names (quoted strings) to integer detector ids"
        raise InputError(msg)
    digits = sorted(k for k in table if k.strip().lstrip("-").isdigit())
    if digits:
        msg = f"{path}: detector_names: name {digits[0]!r} is an integer and would be read as an id"
        raise InputError(msg)
    upper = [k.upper() for k in table]
    repeated = sorted({k for k in upper if upper.count(k) > 1})
    if repeated:
        msg = f"{path}: detector_names: name(s) {', '.join(repeated)} appear more than once (ignoring case)"
        raise InputError(msg)
    unknown = sorted(set(table.values()) - set(load_camera(name, directory=directory)))
    if unknown:
        msg = f"{path}: detector_names: id(s) {', '.join(map(str, unknown))} are not in detector_yaw_deg"
        raise InputError(msg)
    return dict(table)


def detector_yaws(camera, overrides, *, directory=CAMERA_DIR):
    """The effective yaw table: camera *camera*'s (none if empty) updated with *overrides*.

    Parameters
    ----------
    camera : str
        Camera name, or ``""`` for no table.
    overrides : dict
        Detector id (str or int) -> yaw (deg), the config's ``detector_yaw_deg``.
    directory : str or pathlib.Path
        Where the tables are.

    Returns
    -------
    dict of int to float

    Examples
    --------
    >>> detector_yaws("", {"3": 270})
    {3: 270.0}
    """
    yaws = load_camera(camera, directory=directory) if camera else {}
    yaws.update({int(k): float(v) for k, v in overrides.items()})
    return yaws
