"""Notices: the line a job logs, and the end-of-run summary gathered from the logs of this run."""

import io
import logging
import os
import time

import pytest

from brightstamps import notices


def _job_log(path, lines, *, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def test_a_notice_is_logged_in_the_format_the_summary_reads():
    """notice() through the rule scripts' logging format (scripts/_common.py) gives a NOTICE_LINE."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("brightstamps.test_notices")
    logger.addHandler(handler)
    try:
        notices.notice(logger, "empty_extended_psf", "band %s: no star", "r")
    finally:
        logger.removeHandler(handler)
    m = notices.NOTICE_LINE.match(stream.getvalue().rstrip("\n"))
    assert m and m["key"] == "empty_extended_psf" and m["message"] == "band r: no star"
    assert m["logger"] == "brightstamps.test_notices"
    with pytest.raises(ValueError, match="lower case"):
        notices.notice(logger, "Bad Key", "x")


def test_summary_is_one_line_per_key_from_the_logs_of_this_run(tmp_path):
    logs = tmp_path / "logs"
    started = time.time() - 100
    fallback = "WARNING brightstamps.warp: [boresight_fallback] {}.fits: no BORE-RA/BORE-DEC cards"
    for name in ("e3", "e1", "e2", "e4"):
        _job_log(
            logs / "warping" / f"{name}.log",
            [
                "INFO brightstamps.warp: 3 stamps",
                fallback.format(name),
                "INFO brightstamps: peak memory 70 MB",
            ],
        )
    _job_log(
        logs / "stack_extended_psf" / "r.log",
        [
            "WARNING brightstamps.stack: [empty_extended_psf] band r, region DEFAULT: no star was stacked",
            "WARNING brightstamps.stack: [empty_extended_psf] band r, region E: no star was stacked",
        ],
    )
    # not notices: a warning without a key, a library's warning, a key in an INFO line
    _job_log(
        logs / "catalog_matching" / "e1.log",
        [
            "WARNING brightstamps.catalog: catalog.fits: the catalog has no star in the region",
            "WARNING py.warnings: [odd] VerifyWarning: Card is too long",
            "INFO brightstamps.catalog: [not_a_notice] 0 stars",
        ],
    )
    # a log of an earlier run (a job this run did not run) and a file that is not a log
    _job_log(
        logs / "stack_extended_psf" / "g.log",
        [
            "WARNING brightstamps.stack: [empty_extended_psf] band g, region DEFAULT: no star was stacked",
            "WARNING brightstamps.stack: [old_key] from an earlier run",
        ],
        mtime=started - 3600,
    )
    _job_log(logs / "warping" / "e5.txt", [fallback.format("e5")])

    found = notices.read_notices(logs, since=started)
    assert {n.log for n in found} == {str(logs / "warping" / f"e{i}.log") for i in (1, 2, 3, 4)} | {
        str(logs / "stack_extended_psf" / "r.log")
    }
    lines = notices.summarize(found)
    assert lines == [
        f"brightstamps: notice [boresight_fallback] in 4 jobs ({logs}/warping/e1.log, {logs}/warping/e2.log, "
        f"{logs}/warping/e3.log, ...): e1.fits: no BORE-RA/BORE-DEC cards",
        f"brightstamps: notice [empty_extended_psf] 2 times in 1 job ({logs}/stack_extended_psf/r.log): "
        "band r, region DEFAULT: no star was stacked",
    ]
    # without a start time every log counts, the earlier run's too
    everything = notices.summarize(notices.read_notices(logs))
    assert len(everything) == 3 and "[empty_extended_psf] 3 times in 2 jobs" in everything[1]
    assert everything[2].startswith("brightstamps: notice [old_key] in 1 job")


def test_summary_of_missing_or_unreadable_logs_is_empty_not_an_error(tmp_path):
    assert notices.read_notices(tmp_path / "logs") == []
    assert notices.summarize([]) == []
    logs = tmp_path / "logs"
    (logs / "warping").mkdir(parents=True)
    (logs / "warping" / "e1.log").write_bytes(b"\xff\xfe binary \x00\n")
    (logs / "warping" / "gone.log").symlink_to(tmp_path / "nowhere.log")  # a log removed meanwhile
    assert notices.read_notices(logs, since=0) == []
