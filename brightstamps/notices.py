"""Notices: warnings a job leaves for the user, collected and shown once at the end of a run.

A job's log is read by few users, so a doubtful input that does not stop the job (a fallback, an
empty result) is logged as a *notice*: a warning with a short key in brackets, e.g.
``WARNING brightstamps.warp: [boresight_fallback] e1.fits: no BORE-RA/BORE-DEC cards ...``.
The workflow gathers the notices of the jobs it ran and prints them on the terminal, grouped by
key, when the run ends.
"""

import os
import re
from collections import namedtuple

__all__ = ["NOTICE_LINE", "Notice", "notice", "read_notices", "summarize"]

#: A notice as it stands in a job's log (the rule scripts' logging format): logger, key, message.
NOTICE_LINE = re.compile(r"^WARNING (?P<logger>brightstamps[\w.]*): \[(?P<key>[a-z0-9_]+)\] (?P<message>.*)$")


def notice(logger, key, message, *args):
    """Log a notice: a warning the workflow repeats on the terminal at the end of the run.

    Parameters
    ----------
    logger : logging.Logger
        The module's logger (a ``brightstamps.*`` logger).
    key : str
        Short identifier of the kind of notice (lower case, digits, ``_``), used to group the
        notices of many jobs into one line.
    message : str
        %-format message, naming the file or field concerned.
    *args
        Arguments of *message*.
    """
    if not re.fullmatch(r"[a-z0-9_]+", key):
        raise ValueError(f"notice key {key!r} must be lower case letters, digits and '_'")
    logger.warning(f"[{key}] {message}", *args)


#: One notice found in a job's log: its key, message, logger and the log's path.
Notice = namedtuple("Notice", ["key", "message", "logger", "log"])


def read_notices(log_dir, *, since=None):
    """The notices in the job logs under *log_dir* (``*.log`` files, searched recursively).

    Parameters
    ----------
    log_dir : str or os.PathLike
        Directory of the job logs (the workflow's ``logs``); the paths in the result start with it.
    since : float, optional
        Only logs modified at or after this time (seconds since the epoch, the file system's
        clock) are read: the logs of the jobs of the current run.

    Returns
    -------
    list of Notice
        In the order of the logs' paths, then of the lines. A missing directory, or a log that
        vanishes or cannot be read, gives no notice rather than an error: the summary must never
        fail a run.
    """
    found = []
    logs = []
    for root, dirs, files in os.walk(log_dir):
        dirs.sort()
        logs += [os.path.join(root, f) for f in files if f.endswith(".log")]
    for path in sorted(logs):
        try:
            if since is not None and os.stat(path).st_mtime < since:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = NOTICE_LINE.match(line.rstrip("\r\n"))
                    if m:
                        found.append(Notice(m["key"], m["message"], m["logger"], path))
        except OSError:  # removed or unreadable meanwhile
            continue
    return found


def summarize(notices, *, max_logs=3):
    """One line per notice key, for the terminal at the end of a run.

    ``brightstamps: notice [key] in 4 jobs (logs/a.log, logs/b.log, logs/c.log, ...): <first message>``;
    ``N times in M jobs`` when some job logged the key more than once.

    Parameters
    ----------
    notices : list of Notice
        From :func:`read_notices`.
    max_logs : int
        At most this many logs are named per key (the first in path order).

    Returns
    -------
    list of str
        Sorted by key.
    """
    by_key = {}
    for n in notices:
        by_key.setdefault(n.key, []).append(n)
    lines = []
    for key in sorted(by_key):
        group = by_key[key]
        logs = list(dict.fromkeys(n.log for n in group))  # unique, in order
        jobs = f"{len(logs)} job{'s' if len(logs) > 1 else ''}"
        count = f"{len(group)} times in {jobs}" if len(group) > len(logs) else f"in {jobs}"
        named = ", ".join(str(p) for p in logs[:max_logs]) + (", ..." if len(logs) > max_logs else "")
        lines.append(f"brightstamps: notice [{key}] {count} ({named}): {group[0].message}")
    return lines
