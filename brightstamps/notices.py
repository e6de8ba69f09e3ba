"""Notices: warnings a job leaves for the user, collected and shown once at the end of a run.

A job's log is read by few users, so a doubtful input that does not stop the job (a fallback, an
empty result) is logged as a *notice*: a warning with a short key in brackets, e.g.
``WARNING brightstamps.warp: [boresight_fallback] e1.fits: no BORE-RA/BORE-DEC cards ...``.
The workflow gathers the notices of the jobs it ran and prints them on the terminal, grouped by
key, when the run ends.
"""

import re

__all__ = ["NOTICE_LINE", "notice"]

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
