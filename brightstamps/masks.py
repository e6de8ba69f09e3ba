"""Mask planes: LSST-style named bit planes, and conversions between names and bit values."""

import numpy as np
from astropy.io import fits

from .errors import InputError

__all__ = [
    "LSST_MASK_PLANES",
    "LSST_BAD_MASK_PLANES",
    "EXTRA_MASK_PLANES",
    "read_mask_planes",
    "check_mask_bits",
    "mask_plane_cards",
    "ensure_planes",
    "plane_bits",
]

#: afw's standard bit numbers; CROSSTALK and UNMASKEDNAN are added by the LSST stack at run time.
LSST_MASK_PLANES = {
    "BAD": 0,
    "SAT": 1,
    "INTRP": 2,
    "CR": 3,
    "EDGE": 4,
    "DETECTED": 5,
    "DETECTED_NEGATIVE": 6,
    "SUSPECT": 7,
    "NO_DATA": 8,
    "CROSSTALK": 9,
    "UNMASKEDNAN": 10,
}

#: ``badMaskPlanes`` default of ProcessBrightStarsConfig.
LSST_BAD_MASK_PLANES = (
    "BAD",
    "CR",
    "CROSSTALK",
    "EDGE",
    "NO_DATA",
    "SAT",
    "SUSPECT",
    "UNMASKEDNAN",
)

#: Planes that some exposure formats add to LSST's (the DECam CP data-quality codes, see
#: :mod:`brightstamps.formats`): known names in config lists such as ``bad_mask_planes``. The
#: DECam reader adds them in this order, on the first free bits.
EXTRA_MASK_PLANES = ("BLEED", "LOW_WEIGHT", "DIFF_DETECT", "STREAK")


def read_mask_planes(header, *, source):
    """Read the ``MP_<PLANE> = bit`` cards of a FITS header.

    Parameters
    ----------
    header : astropy.io.fits.Header
        Header of the mask HDU.
    source : str
        File name used in the error message.

    Returns
    -------
    dict of str to int
        Plane name to bit index.

    Raises
    ------
    InputError
        If the header has no ``MP_*`` card, or a bit index is not an integer in 0..30.
    """
    planes = {}
    for card in header.cards:  # (only the MP_* values are parsed: another card may be unparsable)
        key = card.keyword
        if not key.startswith("MP_"):
            continue
        try:
            value = card.value
        except (fits.VerifyError, ValueError):
            msg = f"{source}: mask card {key} cannot be parsed (not a bit index in 0..30)"
            raise InputError(msg) from None
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 30:
            msg = f"{source}: mask card {key} = {value!r} is not a bit index in 0..30"
            raise InputError(msg)
        planes[key[3:]] = int(value)
    if not planes:
        msg = f"{source}: the mask HDU has no MP_* cards naming its planes"
        raise InputError(msg)
    return planes


def check_mask_bits(mask, planes, *, source):
    """Fail with one line if a pixel of *mask* has a bit that no plane of *planes* names.

    An LSST mask names each plane it uses in an ``MP_*`` card; a bit without a name cannot be
    told to be bad or harmless (``bad_mask_planes`` names planes), so it stops the job, as a
    value missing from a format's table does.

    Parameters
    ----------
    mask : numpy.ndarray
        int32 mask.
    planes : dict of str to int
        Plane name to bit, from :func:`read_mask_planes`.
    source : str
        File (and HDU) for the message.

    Raises
    ------
    InputError
        Naming the unnamed bits (value and pixel count) and the planes the cards name.
    """
    bits = np.asarray(mask).view(np.uint32)
    present = int(np.bitwise_or.reduce(bits.ravel())) if bits.size else 0
    unnamed = present & ~sum(1 << b for b in set(planes.values()))
    if not unnamed:
        return
    found = []
    for bit in range(32):
        if (unnamed >> bit) & 1:
            count = int(np.count_nonzero(bits & np.uint32(1 << bit)))
            found.append(f"{bit} (value {1 << bit}, {count} pixels)")
    named = ", ".join(f"{name} {bit}" for name, bit in sorted(planes.items(), key=lambda kv: kv[1]))
    bits_have = ("bit {} has" if len(found) == 1 else "bits {} have").format(", ".join(found))
    msg = f"{source}: mask {bits_have} no MP_* card naming a plane (the cards name {named})"
    raise InputError(msg)


def mask_plane_cards(planes):
    """Return ``(keyword, bit)`` pairs for the ``MP_*`` cards of *planes*, sorted by bit.

    Names longer than 8 characters get an explicit HIERARCH keyword, as afw writes them.
    """
    cards = []
    for name, bit in sorted(planes.items(), key=lambda kv: kv[1]):
        key = f"MP_{name}"
        cards.append((f"HIERARCH {key}" if len(key) > 8 else key, bit))
    return cards


def ensure_planes(planes, names):
    """Return a copy of *planes* with every name in *names* present, new ones on free bits.

    Parameters
    ----------
    planes : dict of str to int
        Existing plane dictionary.
    names : iterable of str
        Planes that must exist (e.g. ``NO_DATA``, ``BAD``).

    Returns
    -------
    dict of str to int
    """
    out = dict(planes)
    for name in names:
        if name in out:
            continue
        preferred = LSST_MASK_PLANES.get(name)
        used = set(out.values())
        if preferred is not None and preferred not in used:
            out[name] = preferred
        else:
            free = [b for b in range(31) if b not in used]
            if not free:
                msg = f"no free mask bit left for plane {name}"
                raise InputError(msg)
            out[name] = free[0]
    return out


def plane_bits(planes, names, *, field):
    """OR of the bit values of the planes *names*.

    Planes that are known LSST planes (or planes that some exposure formats add, such as
    ``BLEED``) but absent from *planes* cannot be set in this mask and contribute nothing (afw
    adds planes such as CROSSTALK only when needed). A name that is neither in *planes* nor a
    known plane is an error.

    Parameters
    ----------
    planes : dict of str to int
        The mask's plane dictionary.
    names : iterable of str
        Plane names.
    field : str
        Config field named in the error message.

    Returns
    -------
    int
        Bit mask value.
    """
    value = 0
    for name in names:
        if name in planes:
            value |= 1 << planes[name]
        elif name not in LSST_MASK_PLANES and name not in EXTRA_MASK_PLANES:
            known = sorted(set(planes) | set(LSST_MASK_PLANES) | set(EXTRA_MASK_PLANES))
            msg = f"{field}: unknown mask plane {name!r}; known planes: {known}"
            raise InputError(msg)
    return value
