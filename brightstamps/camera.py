"""Camera tables: each detector's yaw in the focal plane, from ``config/cameras/<camera>.yaml``.

A table holds ``camera`` (its name) and ``detector_yaw_deg`` (integer detector id -> yaw in
degrees, the rotation of the detector's x axis in the focal plane, as in LSST's camera
descriptions). The config's ``detector_yaw_deg`` overrides single entries.
"""

from pathlib import Path

import yaml

from .errors import InputError

__all__ = ["CAMERA_DIR", "camera_names", "detector_yaws", "load_camera"]

#: The camera tables shipped with the workflow.
CAMERA_DIR = Path(__file__).resolve().parents[1] / "config" / "cameras"


def camera_names(directory=CAMERA_DIR):
    """Names of the camera tables in *directory* (file stems), sorted."""
    return sorted(p.stem for p in Path(directory).glob("*.yaml"))


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
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        raise InputError(f"camera: no table {path}; available: {', '.join(camera_names(directory)) or 'none'}")
    with open(path) as f:
        data = yaml.safe_load(f)
    table = data.get("detector_yaw_deg") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise InputError(f"{path}: needs a non-empty mapping detector_yaw_deg (detector id -> yaw in degrees)")
    try:
        return {int(k): float(v) for k, v in table.items()}
    except (TypeError, ValueError):
        raise InputError(f"{path}: detector_yaw_deg must map integer detector ids to numbers") from None


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
