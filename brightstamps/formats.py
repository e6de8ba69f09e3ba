"""Exposure formats: their names, the files each exposure reads, and the DECam CP data-quality codes.

This module imports nothing heavier than the standard library, so that the workflow's rules can
use it to list every job's input files (Snakemake tracks the DECam ``oow``/``ood`` files found
by name). The readers themselves are in :mod:`brightstamps.exposure`.

Formats
-------
``lsst_calexp``
    The LSST Exposure layout: HDU 1 image, HDU 2 mask (named planes in ``MP_*`` cards), HDU 3
    variance; the sky is subtracted.
``decam_cp``
    DECam Community Pipeline (NOIRLab) ``InstCal`` products, three files: ``ooi`` image,
    ``oow`` inverse variance (weight) and ``ood`` data-quality mask, each CCD in one HDU (1 in a
    single-CCD file; the ``hdu`` column picks a CCD by index or EXTNAME, e.g. ``S9``, in a
    whole-exposure file). The WCS is TPV. The sky is *not* subtracted, so step 1 fits one unless a
    ``sky_model`` is given. The ``oow``/``ood`` files are found by replacing ``_ooi_`` in the
    image's file name, unless the ``weight`` / ``mask`` columns name them.
``fits``
    A generic FITS image with a celestial WCS in one HDU (the ``hdu`` column, default the first
    HDU with 2-D data), optional separate ``variance``, ``weight`` or ``mask`` files (first 2-D
    HDU), read as the config's ``fits_format`` says.

DECam CP data-quality codes
---------------------------
Since CP version 3.5.0 (``PLVER``) the ``ood`` pixels hold one integer code each (legacypipe
``remap_dq_cp_codes``; NOIRLab CP documentation). They map onto named mask planes, LSST's name
where LSST has the plane:

==== ================================================ ===============
code CP meaning                                       mask plane
==== ================================================ ===============
0    good                                             (none)
1    bad (detector bad pixel)                         ``BAD``
2    no value (remapped and stacked data)             ``NO_DATA``
3    saturated                                        ``SAT``
4    bleed trail                                      ``BLEED``
5    cosmic ray                                       ``CR``
6    low weight                                       ``LOW_WEIGHT``
7    difference detection (multi-exposure transient)  ``DIFF_DETECT``
8    long streak (e.g. satellite trail)               ``STREAK``
==== ================================================ ===============

Before CP 3.5.0 the ``ood`` was a bit mask: 1 ``BAD``, 2 ``SAT``, 4 ``INTRP``, 16 ``CR``,
64 ``BLEED``, 128 ``DIFF_DETECT``. Any other code or bit stops the job with one line. Pixels
of weight 0 (all flagged pixels, in the CP's products) are also ``NO_DATA`` with variance +inf.
"""

import os
import re

from .errors import InputError

__all__ = [
    "FORMATS",
    "DECAM_CP_CODES",
    "DECAM_CP_OLD_BITS",
    "EXTRA_MASK_PLANES",
    "parse_hdu",
    "decam_companion",
    "exposure_files",
    "cp_uses_codes",
]

#: Exposure formats understood by :func:`brightstamps.exposure.read_exposure`.
FORMATS = ("lsst_calexp", "decam_cp", "fits")

#: Whether each format's image has its sky subtracted (``fits``: the config says).
SKY_SUBTRACTED = {"lsst_calexp": True, "decam_cp": False}

#: DECam CP ``ood`` integer codes (CP >= 3.5.0) -> mask plane.
DECAM_CP_CODES = {
    1: "BAD",
    2: "NO_DATA",
    3: "SAT",
    4: "BLEED",
    5: "CR",
    6: "LOW_WEIGHT",
    7: "DIFF_DETECT",
    8: "STREAK",
}

#: DECam CP ``ood`` bit values (CP < 3.5.0) -> mask plane.
DECAM_CP_OLD_BITS = {1: "BAD", 2: "SAT", 4: "INTRP", 16: "CR", 64: "BLEED", 128: "DIFF_DETECT"}

#: Mask planes that some formats add to LSST's (known names in config lists such as bad_mask_planes).
EXTRA_MASK_PLANES = ("BLEED", "LOW_WEIGHT", "DIFF_DETECT", "STREAK")

_CP_CODES_SINCE = (3, 5, 0)


def parse_hdu(value):
    """The ``hdu`` column: None (empty), an index (digits) or an EXTNAME (anything else)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    return int(text) if text.isdigit() else text


def decam_companion(image, kind):
    """The DECam CP ``oow`` (*kind* ``'oow'``) or ``ood`` file of an ``ooi`` image, by name.

    ``_ooi_`` in the file name (not the directories) becomes ``_oow_`` / ``_ood_``.

    Raises
    ------
    InputError
        If the image's file name has no ``_ooi_``.
    """
    head, name = os.path.split(str(image))
    if "_ooi_" not in name:
        column = "weight" if kind == "oow" else "mask"
        msg = (f"{image}: format decam_cp finds the {kind} file by replacing '_ooi_' in the image's name, "
               f"and this name has none; give the {column} column")
        raise InputError(msg)
    return os.path.join(head, name.replace("_ooi_", f"_{kind}_"))


def exposure_files(image, *, fmt, mask=None, variance=None, weight=None):
    """The files an exposure is read from, by role.

    Parameters
    ----------
    image : str
        The image file.
    fmt : str
        One of :data:`FORMATS`.
    mask, variance, weight : str or None
        Files given by the exposures table (empty or None: not given).

    Returns
    -------
    dict
        ``image`` and, when read, ``mask``, ``variance`` and ``weight`` (inverse variance). For
        ``decam_cp`` the ``ood`` mask and, unless a variance file is given, the ``oow`` weight
        are found by name.

    Raises
    ------
    InputError
        An unknown format, both a variance and a weight file, or a ``decam_cp`` image whose
        companions cannot be found by name.
    """
    if fmt not in FORMATS:
        msg = f"{image}: format {fmt!r} is not supported (supported: {', '.join(FORMATS)})"
        raise InputError(msg)
    if variance and weight:
        msg = f"{image}: give a variance file or a weight (inverse variance) file, not both"
        raise InputError(msg)
    files = {"image": str(image)}
    if fmt == "decam_cp":
        mask = mask or decam_companion(image, "ood")
        if not variance:
            weight = weight or decam_companion(image, "oow")
    for key, path in (("mask", mask), ("variance", variance), ("weight", weight)):
        if path:
            files[key] = str(path)
    return files


def cp_uses_codes(plver):
    """True if a CP of version *plver* (``PLVER``, e.g. ``'V4.8.2a'``) writes DQ codes, not bits.

    A missing or unparsable version is taken as a current CP (codes).
    """
    if not plver:
        return True
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", str(plver))
    if not found:
        return True
    version = tuple(int(g or 0) for g in found.groups())
    return version >= _CP_CODES_SINCE
