"""Shared start-up of the rule scripts: logging, one-line errors, and the workflow's own package.

The package is the installed one (``pip install -e <checkout>``: the Makefile's venv, the conda
env's post-deploy script); :func:`run` checks that it is this checkout's own, so that a job never
runs another checkout's code.
"""

import logging
import resource
import sys
import traceback
from pathlib import Path

from brightstamps.config import check_package_home
from brightstamps.errors import InputError

#: The workflow checkout these scripts belong to.
_ROOT = Path(__file__).resolve().parents[1]


def _peak_mb():
    """Peak resident memory of this job.

    VmHWM is this program's own; ru_maxrss would include the peak of the process that started it,
    when that one started it directly.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def read_exposure(params):
    """The rule's exposure, read as its ``exposure`` params (``rules/common.smk``) say."""
    from brightstamps import exposure

    return exposure.read_exposure(
        params["image"],
        mask=params["mask"],
        variance=params["variance"],
        weight=params["weight"],
        hdu=params["hdu"],
        fmt=params["fmt"],
        fits_options=params["fits_format"],
    )


def run(main, smk):
    """Run ``main(smk)`` with stderr, logging and warnings sent to the rule's log.

    Bad input (:class:`~brightstamps.errors.InputError`) ends the job with one line, written to
    the log and to the terminal; any other exception also leaves its traceback in the log.
    """
    terminal = sys.stderr
    log_file = open(smk.log[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = log_file
    logging.basicConfig(
        stream=log_file, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
    try:
        check_package_home(_ROOT)
        main(smk)
        logging.getLogger("brightstamps").info("peak memory %.0f MB", _peak_mb())
    except InputError as err:
        line = f"brightstamps: error in rule {smk.rule}: {err}"
        print(line, file=log_file)
        print(line, file=terminal)
        sys.exit(1)
    except Exception as err:
        traceback.print_exc(file=log_file)
        line = f"brightstamps: unexpected {type(err).__name__} in rule {smk.rule}: {err} (traceback in {smk.log[0]})"
        print(line, file=log_file)
        print(line, file=terminal)
        sys.exit(1)
