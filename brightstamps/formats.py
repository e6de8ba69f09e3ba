"""Exposure formats: what each one is, the files and HDUs an exposure is read from, DECam CP codes.

The one place that knows the formats; the readers are in :mod:`brightstamps.exposure`, the mask
planes in :mod:`brightstamps.masks`.

This module imports nothing heavier than the standard library, so that the workflow's rules can
use it to list every job's input files (Snakemake tracks the DECam ``oow``/``ood`` files found
by name). :func:`find_hdu` works on an open FITS file without importing astropy itself.

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

import dataclasses
import os
import re

from .errors import InputError

__all__ = [
    "check_hdu_column",
    "Format",
    "FORMAT_TABLE",
    "FORMATS",
    "PLANE_FILE",
    "DECAM_CP_CODES",
    "DECAM_CP_OLD_BITS",
    "format_of",
    "parse_hdu",
    "find_hdu",
    "decam_companion",
    "exposure_files",
    "cp_uses_codes",
]


@dataclasses.dataclass(frozen=True)
class Format:
    """What an exposure format is.

    Attributes
    ----------
    name : str
        The format's name (the exposures table's ``format`` column).
    layout : str
        Where its planes are, as error messages name it.
    sky_subtracted : bool or None
        Whether its images have their sky subtracted; None: the config says
        (``fits_format.sky_subtracted``).
    image_hdu : int or None
        The image's HDU when the ``hdu`` column is empty; None: the first HDU with 2-D data.
    hdu_column : bool
        Whether the ``hdu`` column may pick the image's HDU (else the layout is fixed).
    plane_hdus : dict of str to int
        Other planes in the image's file, by HDU (a fixed layout).
    companions : dict of str to str
        Files found by name when their column is empty (role -> kind, see :func:`decam_companion`),
        each read at the image's HDU.
    """

    name: str
    layout: str
    sky_subtracted: bool | None
    image_hdu: int | None
    hdu_column: bool
    plane_hdus: dict = dataclasses.field(default_factory=dict)
    companions: dict = dataclasses.field(default_factory=dict)


#: The formats understood by :func:`brightstamps.exposure.read_exposure`, by name.
FORMAT_TABLE = {
    "lsst_calexp": Format(
        "lsst_calexp",
        "LSST calexp layout: 1 image, 2 mask, 3 variance",
        sky_subtracted=True,
        image_hdu=1,
        hdu_column=False,
        plane_hdus={"mask": 2, "variance": 3},
    ),
    "decam_cp": Format(
        "decam_cp",
        "DECam CP: one CCD per HDU",
        sky_subtracted=False,
        image_hdu=1,
        hdu_column=True,
        companions={"mask": "ood", "weight": "oow"},
    ),
    "fits": Format("fits", "format fits", sky_subtracted=None, image_hdu=None, hdu_column=True),
}

#: Their names (the exposures schema's ``format`` enum lists the same).
FORMATS = tuple(FORMAT_TABLE)

#: A separate mask, variance or weight file named by the exposures table: its first 2-D HDU.
PLANE_FILE = Format(
    "separate file", "a separate plane file", sky_subtracted=None, image_hdu=None, hdu_column=False
)

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

_CP_CODES_SINCE = (3, 5, 0)


def format_of(fmt, *, source):
    """The :class:`Format` named *fmt*.

    Raises
    ------
    InputError
        An unknown format, naming *source* (the image file) and the supported ones.
    """
    if fmt not in FORMAT_TABLE:
        msg = f"{source}: format {fmt!r} is not supported (supported: {', '.join(FORMATS)})"
        raise InputError(msg)
    return FORMAT_TABLE[fmt]


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


def check_hdu_column(fmt, hdu, *, source=""):
    """Fail if the ``hdu`` column is given for a format with a fixed layout (``lsst_calexp``).

    Parameters
    ----------
    fmt : str
        The exposure's format.
    hdu : str, int or None
        The ``hdu`` column (empty or None: not given).
    source : str
        What to name in the message (the image, or the table's row).

    Raises
    ------
    InputError
        Naming *source*, the format's layout, the formats the column is for and the ``hdu`` given.

    Examples
    --------
    >>> check_hdu_column("decam_cp", "S9"), check_hdu_column("lsst_calexp", "")
    (None, None)
    """
    spec = format_of(fmt, source=source)
    if parse_hdu(hdu) is not None and not spec.hdu_column:
        others = " and ".join(f.name for f in FORMAT_TABLE.values() if f.hdu_column)
        at = f"{source}: " if source else ""
        raise InputError(
            f"{at}format {spec.name} has a fixed layout ({spec.layout}); the hdu column is for "
            f"{others} (it gives {str(hdu)!r})"
        )


def find_hdu(hdul, *, fmt, hdu=None, plane="image", path):
    """The index of the HDU of *hdul* that holds a plane of an exposure: the one rule of every reader.

    The image is in the HDU the ``hdu`` column names, by index or EXTNAME, else in the format's
    default HDU (``lsst_calexp`` and ``decam_cp``: 1; ``fits``: the first HDU with 2-D data).
    ``lsst_calexp`` keeps its other planes in fixed HDUs; a ``decam_cp`` ``ood`` or ``oow`` file
    holds its plane in the image's HDU; a separate plane file in its first 2-D HDU.

    Parameters
    ----------
    hdul : astropy.io.fits.HDUList
        The open file.
    fmt : str or None
        The exposure's format (one of :data:`FORMATS`), or None for a separate plane file
        (:data:`PLANE_FILE`).
    hdu : int, str or None
        The ``hdu`` column (as :func:`parse_hdu` reads it; empty or None: the format's default).
    plane : str
        The plane wanted: ``image``, or one of the format's :attr:`Format.plane_hdus` (the
        ``lsst_calexp`` ``mask`` and ``variance``); other names (``data-quality``, ``weight``)
        are the image's HDU of a companion file. Named in the messages.
    path : str
        The file, for the messages.

    Returns
    -------
    int

    Raises
    ------
    InputError
        An unknown format, an ``hdu`` for a fixed layout, an HDU that does not exist or is not a
        2-D image.
    """
    spec = PLANE_FILE if fmt is None else format_of(fmt, source=path)
    hdu = parse_hdu(hdu)
    if fmt is not None:
        check_hdu_column(fmt, hdu, source=path)
    if hdu is None:
        index = spec.plane_hdus.get(plane, spec.image_hdu)
        if index is None:
            return _first_2d_hdu(hdul, path=path)
    elif isinstance(hdu, int):
        if not 0 <= hdu < len(hdul):
            raise InputError(f"{path}: has no HDU {hdu} (it has {len(hdul)}: 0-{len(hdul) - 1})")
        index = hdu
    else:
        names = [h.name.upper() for h in hdul]
        if hdu.upper() not in names:
            listed = ", ".join(n for n in names if n and n != "PRIMARY") or "none"
            raise InputError(f"{path}: has no HDU named {hdu!r} (EXTNAMEs: {listed})")
        index = names.index(hdu.upper())
    found = hdul[index] if index < len(hdul) else None
    if found is None or not found.is_image or found.header.get("NAXIS", 0) != 2:  # (a table has NAXIS 2 too)
        raise InputError(f"{path}: HDU {index} should hold the 2-D {plane} plane ({spec.layout})")
    return index


def _first_2d_hdu(hdul, *, path):
    for i, h in enumerate(hdul):
        if h.is_image and h.header.get("NAXIS", 0) == 2:
            return i
    raise InputError(f"{path}: no HDU holds a 2-D image")


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
        msg = (
            f"{image}: format decam_cp finds the {kind} file by replacing '_ooi_' in the image's name, "
            f"and this name has none; give the {column} column"
        )
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
    spec = format_of(fmt, source=image)
    if variance and weight:
        msg = f"{image}: give a variance file or a weight (inverse variance) file, not both"
        raise InputError(msg)
    given = {"mask": mask, "variance": variance, "weight": weight}
    for role, kind in spec.companions.items():
        if not given[role] and not (role == "weight" and variance):  # a variance file replaces the weight
            given[role] = decam_companion(image, kind)
    files = {"image": str(image)}
    for key, path in given.items():
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
