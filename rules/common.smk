# Validation of the configuration and the exposures table against their schemas, the table read,
# wildcard constraints and input functions. The checks themselves are the package's
# (brightstamps.config, standard library only): each fails with one line naming the field or the
# table's row, before any job runs.
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

# Snakemake puts the Snakefile's directory first on sys.path, so the rules import this checkout's
# package; the jobs import the installed one (pip install -e: the Makefile's venv, the conda env's
# post-deploy script), which scripts/_common.py checks to be the same.
from brightstamps import config as bs_config
from brightstamps import formats as bs_formats
from brightstamps import notices as bs_notices
from brightstamps.errors import InputError

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


# the exposures table's row schema: validated here, and the package reads the ids' pattern from it
TABLE_SCHEMA = workflow.source_path("../config/exposures.schema.yaml")


def _checked(check, *args, **kwargs):
    """A package check's result; its InputError as one line."""
    try:
        return check(*args, **kwargs)
    except InputError as err:
        _config_error(str(err))


# set for envs/brightstamps.post-deploy.sh, which installs this checkout's package in the conda env
# (not a variable the user must give, which the envvars directive is for)
os.environ.update(BRIGHTSTAMPS_WORKFLOW=str(Path(workflow.current_basedir).parent))
_validate(bs_config.string_keys(config), "../config/config.schema.yaml", "")
_checked(bs_config.check_config, config)
DETECTOR_YAWS = _checked(bs_config.detector_yaws, config["camera"], config["detector_yaw_deg"])
CATALOG_INPUTS = _checked(bs_config.catalog_inputs, config["catalog"]["path"])


def _read_exposures(path):
    """The exposures table, checked, with every detector resolved to its integer id (a string)."""
    columns, records, lines = _checked(bs_config.read_exposures, path, schema=TABLE_SCHEMA)
    table = pd.DataFrame(records, columns=columns, dtype=str)
    _validate(
        table,
        TABLE_SCHEMA,
        f"{path}: column ",
        row_prefix=lambda i: f"{path} row {lines[i]} ({table['exposure'].iloc[i]}): column ",
    )
    rows = table.to_dict("records")  # now with every column, defaults filled in
    table["detector"] = [
        str(
            _checked(
                bs_config.check_exposure_row,
                row,
                where=f"{path} row {line} ({row['exposure']})",
                camera=config["camera"],
                wildcard=WILDCARD_REGEX,
                made_under=config["demo"]["outdir"],
            )
        )
        for row, line in zip(rows, lines)
    ]
    # given once, by the main process (a cluster job parses this file again)
    if workflow.is_main_process:
        for line in bs_config.duplicate_image_warnings(rows, source=path):
            print(f"brightstamps: warning: {line}", file=sys.stderr)
    return table.set_index("exposure", drop=False).sort_index()


exposures = _read_exposures(config["exposures"])
_checked(
    bs_config.check_detector_yaws,
    exposures["detector"],
    DETECTOR_YAWS,
    camera=config["camera"],
    orientation=config["orientation"],
    source=config["exposures"],
)
EXPOSURES = list(exposures.index)
# one dict per row: input functions run for every job, and pandas .loc costs ~0.1 ms a call
EXPOSURE_ROWS = exposures.to_dict("index")


# one path component: the ids' pattern is the table schema's (checked above); a character class,
# not an alternation of all ids, which dominated building the DAG of a large run
wildcard_constraints:
    exposure=r"[^/]+",


BANDS = sorted(set(exposures["band"])) if len(exposures) else []


wildcard_constraints:
    band="|".join(re.escape(b) for b in BANDS) or "(?!)",


def final_stamps():
    return expand("results/{exposure}/bright_star_stamps.fits", exposure=EXPOSURES)


def final_outputs():
    """Everything the default target makes: stamps, extended PSFs and the report's figures."""
    return final_stamps() + expand("results/extended_psf/{band}.fits", band=BANDS) + report_outputs()


# the simulated demo's files, which simulate_demo writes - its exposures and its truth
DEMO_IMAGES = expand("{outdir}/demo_det{det}.fits", outdir=config["demo"]["outdir"], det=[0, 1, 2, 3])
DEMO_TRUTH = f"{config['demo']['outdir']}/truth.fits"


def demo_truth(wildcards):
    """{"truth": the demo's truth file} when every exposure of the band is an image rule
    simulate_demo makes (its true PSF is then the band's), else {}: for the report's profile figure."""
    demo = {os.path.realpath(f) for f in DEMO_IMAGES}
    images = exposures["image"][exposures["band"] == wildcards.band]
    if len(images) and all(os.path.realpath(i) in demo for i in images):
        return {"truth": DEMO_TRUTH}
    return {}


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
    return bs_formats.exposure_files(
        r["image"], fmt=r["format"], mask=r["mask"], variance=r["variance"], weight=r["weight"]
    )


def sky_correction_inputs(wildcards):
    """The exposure's files and, when the table gives one and it is applied, its sky model."""
    files = exposure_files(wildcards)
    r = row(wildcards)
    if r["sky_model"] and config["do_apply_sky_corr"]:
        files["sky_model"] = r["sky_model"]
    return files


def exposure_params(wildcards):
    """How to read the exposure, and its identity for the output headers."""
    r = row(wildcards)
    fmt = r["format"]
    return {
        "image": r["image"],
        "mask": r["mask"] or None,
        "variance": r["variance"] or None,
        "weight": r["weight"] or None,
        "hdu": r["hdu"] or None,
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


# CONFHASH: the hash of the config fields that decide a bright_star_stamps file (the package
# says which: brightstamps.config.RULE_FIELDS)
CONFIG_HASH = bs_config.config_hash(config, DETECTOR_YAWS)


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
            kind=[
                "extended_psf.png",
                "psf_profile.png",
                "profile.png",
                "star_fits.png",
                "annular_flux.png",
                "stars.tsv",
            ],
        )
        + ["results/report/versions.tsv"]
    )
