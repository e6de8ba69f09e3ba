"""Calibrated exposures: image, mask, variance and WCS, read from and written to FITS.

Three formats are read (:mod:`brightstamps.formats` says what each is, which files and which HDUs
an exposure is read from, and holds the DECam CP data-quality table): ``lsst_calexp``,
``decam_cp`` and ``fits``. Every reader returns an :class:`Exposure` with LSST-style named mask
planes and a variance plane; pixels without data (weight 0, a non-finite image) are ``NO_DATA``
with variance +inf, as the warp marks them.
"""

import dataclasses
import logging
import math
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning

from . import formats
from .errors import InputError
from .files import atomic_output, open_fits
from .frames import wcs_frame
from .masks import (
    EXTRA_MASK_PLANES,
    LSST_MASK_PLANES,
    check_mask_bits,
    ensure_planes,
    mask_plane_cards,
    read_mask_planes,
)
from .notices import notice

__all__ = [
    "Exposure",
    "read_exposure",
    "read_exposure_header",
    "read_celestial_wcs",
    "check_wcs",
    "check_header_cards",
    "decode_mask",
    "estimate_variance",
    "noise_plane",
    "observation_epoch",
    "write_exposure",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Exposure:
    """One calibrated detector exposure.

    Attributes
    ----------
    image : numpy.ndarray
        Image plane, float32, indexed ``[y, x]``.
    mask : numpy.ndarray
        Mask plane, int32 bit planes.
    variance : numpy.ndarray
        Variance plane, float32.
    wcs : astropy.wcs.WCS
        Celestial WCS of the image (0-based pixel convention through astropy).
    mask_planes : dict of str to int
        Mask plane name to bit index.
    metadata : astropy.io.fits.Header
        Primary header merged with the image header (MJD-OBS, DATE-OBS, BORE-RA, ...).
    path : str
        File the exposure was read from.
    sky_subtracted : bool
        Whether the image's sky has been subtracted (step 1 fits one otherwise).
    cards : dict
        Header cards describing how the exposure was read (``EXPFMT``, ``VARSRC``, ...), carried
        into the stamps files.
    files : dict
        The files read, by role (``image``, ``mask``, ``variance``, ``weight``).
    """

    image: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    wcs: WCS
    mask_planes: dict
    metadata: fits.Header
    path: str = ""
    sky_subtracted: bool = True
    cards: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)

    @property
    def shape(self):
        """``(ny, nx)`` of the image."""
        return self.image.shape


def _plane(hdul, *, fmt, hdu=None, plane="image", path):
    """The index and the data of the HDU of *hdul* that holds *plane*.

    The HDU is :func:`brightstamps.formats.find_hdu`'s (*fmt* None: a separate plane file).
    """
    index = formats.find_hdu(hdul, fmt=fmt, hdu=hdu, plane=plane, path=path)
    try:
        data = hdul[index].data
    except (OSError, ValueError, TypeError) as err:
        msg = f"{path}: HDU {index} ({plane}) cannot be read: {err} (truncated file?)"
        raise InputError(msg) from None
    if data is None:
        msg = f"{path}: HDU {index} ({plane}) has no data"
        raise InputError(msg)
    return index, data


#: Cards of the primary WCS whose values wcslib needs as numbers (it skips any other value silently).
_WCS_NUMBER_CARD = re.compile(
    r"^((CRVAL|CRPIX|CDELT|CROTA)\d|(PC|CD)\d_\d|PV\d_\d+|(A|B|AP|BP)_\d+_\d+"
    r"|LONPOLE|LATPOLE)$"
)


def _card_value(card, *, source):
    """The value of a header card, or one line naming it: not parsable, or a non-finite number."""
    try:
        value = card.value
    except (fits.VerifyError, ValueError):  # (its text is not shown: astropy "fixes" the card to show it)
        raise InputError(
            f"{source}: header card {card.keyword} cannot be parsed (its value is not a FITS "
            "number, string or logical)"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{source}: header card {card.keyword} = {value} is not a finite number")
    return value


def check_header_cards(header, *, source):
    """Fail with one line naming the first card of *header* whose value cannot be parsed.

    astropy parses a card's value only when it is used and then raises ``VerifyError`` (text such
    as ``NAN``) or refuses to copy it (``1E999``, infinite), wherever that is; checking every card
    once, where the header is read, names the file, the HDU and the card instead.

    Parameters
    ----------
    header : astropy.io.fits.Header
    source : str
        File (and HDU) for the message.
    """
    for card in header.cards:
        _card_value(card, source=source)


def read_celestial_wcs(header, *, source):
    """Build a celestial WCS from *header*, or fail with one line naming *source*.

    Also for a celestial frame that the ICRS catalog cannot be converted to (see
    :func:`brightstamps.frames.wcs_frame`).

    The WCS's number cards (CRVAL, CRPIX, CDELT, PC, CD, PV, SIP, ...) must hold finite numbers:
    wcslib silently replaces a card it cannot read (e.g. ``PC1_1 = 'NAN'``) by its default.
    """
    for card in header.cards:
        if _WCS_NUMBER_CARD.match(card.keyword):
            value = _card_value(card, source=source)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{source}: WCS card {card.keyword} = {value!r} is not a number")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as err:  # astropy raises many types for broken WCS cards
            msg = f"{source}: the WCS cannot be parsed: {err}"
            raise InputError(msg) from None
    if not wcs.has_celestial:
        msg = f"{source}: the image header has no celestial WCS (CTYPE1/CTYPE2 with RA/DEC)"
        raise InputError(msg)
    celestial = wcs.celestial
    wcs_frame(celestial, source=source)  # a frame the ICRS catalog cannot be converted to stops here
    return celestial


def check_wcs(wcs, shape, *, source):
    """Fail with one line unless *wcs* maps the detector to the sky and back (0.01 px).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
    shape : tuple of int
        ``(ny, nx)`` of the detector.
    source : str
        File name for the message.
    """
    ny, nx = shape
    points = np.array(
        [[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1], [(nx - 1) / 2, (ny - 1) / 2]], float
    )
    try:
        with np.errstate(all="ignore"):
            world = wcs.all_pix2world(points, 0)
            back = wcs.all_world2pix(world, 0, quiet=True)
    except Exception as err:  # singular matrices, divergent distortions, ...
        raise InputError(f"{source}: the WCS cannot be inverted over the detector ({err})") from None
    error = np.hypot(*(back - points).T)
    if not np.all(np.isfinite(world)) or not np.all(error < 0.01):
        worst = int(np.nanargmax(np.where(np.isfinite(error), error, np.inf)))
        msg = (
            f"{source}: the WCS cannot be inverted over the detector (pixel {tuple(points[worst])} maps back "
            f"to {tuple(np.round(back[worst], 3))})"
        )
        raise InputError(msg)


def read_exposure(image, *, fmt, mask=None, variance=None, weight=None, hdu=None, fits_options=None):
    """Read one exposure.

    Parameters
    ----------
    image : str
        The image file. ``lsst_calexp``: image (HDU 1), mask with ``MP_*`` cards (HDU 2) and
        variance (HDU 3). ``decam_cp``: the ``ooi`` file. ``fits``: any FITS image with a
        celestial WCS.
    fmt : {'lsst_calexp', 'decam_cp', 'fits'}
        Format of the files (:mod:`brightstamps.formats`).
    mask, variance, weight : str or None
        Separate files (their first 2-D HDU; for ``decam_cp`` the ``ood`` mask and ``oow`` weight
        are read at the image's HDU) for the mask, the variance or the weight (inverse variance);
        at most one of variance and weight. For ``decam_cp`` the ``ood`` mask and ``oow`` weight
        are found by name when not given. None: not given.
    hdu : int, str or None
        ``decam_cp`` and ``fits``: the image HDU, by index or EXTNAME (None: the format's
        default, :func:`brightstamps.formats.find_hdu`).
    fits_options : dict
        Format ``fits`` (required): the config's ``fits_format``, every field of it.

    Returns
    -------
    Exposure

    Raises
    ------
    InputError
        A file that is missing, unreadable, lacks a plane, a WCS or the mask-plane cards, planes
        of mismatched shapes, or mask values the format does not know.
    """
    files = formats.exposure_files(image, fmt=fmt, mask=mask, variance=variance, weight=weight)
    hdu = formats.parse_hdu(hdu)
    formats.check_hdu_column(fmt, hdu, source=image)  # (the lsst_calexp reader takes no hdu: say so first)
    if fmt == "lsst_calexp":
        exp = _read_lsst_calexp(files)
    elif fmt == "decam_cp":
        exp = _read_decam_cp(files, hdu=hdu)
    else:
        if fits_options is None:  # (the schema's defaults are the config's, not the reader's)
            raise TypeError("read_exposure: format fits needs fits_options, the config's fits_format")
        exp = _read_fits(files, hdu=hdu, options=fits_options)
    if not np.isfinite(exp.image).any():
        raise InputError(f"{image}: the image has no finite pixel")
    check_wcs(exp.wcs, exp.image.shape, source=image)
    exp.files = files
    exp.cards = {"EXPFMT": (fmt, "exposure format read"), **exp.cards}
    return exp


def _read_lsst_calexp(files):
    image = files["image"]
    fmt = "lsst_calexp"
    with open_fits(image) as hdul:
        index, img = _plane(hdul, fmt=fmt, path=image)
        img = np.asarray(img, dtype=np.float32)
        metadata = _metadata(hdul, index, path=image)
        wcs = read_celestial_wcs(hdul[index].header, source=_image_source(image, fmt, index))
        if "mask" not in files:
            m_index, msk = _plane(hdul, fmt=fmt, plane="mask", path=image)
            msk = np.asarray(msk, dtype=np.int32)
            planes = read_mask_planes(hdul[m_index].header, source=f"{image} (HDU {m_index})")
            check_mask_bits(msk, planes, source=f"{image} (HDU {m_index})")
        if "variance" not in files and "weight" not in files:
            v_index, var = _plane(hdul, fmt=fmt, plane="variance", path=image)
            _check_shape(var, img, image, "variance")
            var, no_data = noise_plane(var, kind="variance", source=f"{image} (HDU {v_index})")
            cards = {"VARSRC": ("variance plane", f"variance: the image file's HDU {v_index}")}
    if "mask" in files:
        msk, header = _separate_plane(files["mask"], "mask", img.shape)
        msk = np.asarray(msk, dtype=np.int32)
        planes = read_mask_planes(header, source=files["mask"])
        check_mask_bits(msk, planes, source=files["mask"])
    if "variance" in files or "weight" in files:
        var, no_data, cards = _noise_from_files(files, img.shape)
    _check_shape(msk, img, files.get("mask", image), "mask")
    if "weight" in files or no_data.any():  # (otherwise the planes stay as the MP_* cards name them)
        planes = ensure_planes(planes, ["NO_DATA"])
        msk[no_data] |= np.int32(1 << planes["NO_DATA"])
    return Exposure(
        img,
        msk,
        var,
        wcs,
        planes,
        metadata,
        str(image),
        sky_subtracted=formats.FORMAT_TABLE[fmt].sky_subtracted,
        cards=cards,
    )


def _read_decam_cp(files, *, hdu):
    image = files["image"]
    fmt = "decam_cp"
    with open_fits(image, what="DECam CP image (ooi) file") as hdul:
        index, img = _plane(hdul, fmt=fmt, hdu=hdu, path=image)
        img = np.asarray(img, dtype=np.float32)
        metadata = _metadata(hdul, index, path=image)
        wcs = read_celestial_wcs(hdul[index].header, source=_image_source(image, fmt, index))
    with open_fits(files["mask"], what="DECam CP data-quality (ood) file") as hdul:
        _, dq = _plane(hdul, fmt=fmt, hdu=hdu, plane="data-quality", path=files["mask"])
        plver = hdul[0].header.get("PLVER", metadata.get("PLVER"))
    _check_shape(dq, img, files["mask"], "data-quality (ood)")
    planes = {**LSST_MASK_PLANES}
    planes = ensure_planes(planes, EXTRA_MASK_PLANES)
    if formats.cp_uses_codes(plver):
        msk = decode_mask(
            dq,
            "values",
            formats.DECAM_CP_CODES,
            planes,
            source=files["mask"],
            table_name=f"the DECam CP codes (PLVER {plver})",
        )
    else:
        table = {int(np.log2(v)): name for v, name in formats.DECAM_CP_OLD_BITS.items()}
        msk = decode_mask(
            dq,
            "bits",
            table,
            planes,
            source=files["mask"],
            table_name=f"the DECam CP bits of PLVER {plver} (before 3.5.0)",
        )
    if "variance" in files:
        var, no_data, cards = _noise_from_files(files, img.shape)
    else:
        with open_fits(files["weight"], what="DECam CP weight (oow) file") as hdul:
            w_index, weight = _plane(hdul, fmt=fmt, hdu=hdu, plane="weight", path=files["weight"])
        _check_shape(weight, img, files["weight"], "weight (oow)")
        var, no_data = noise_plane(weight, kind="weight", source=f"{files['weight']} (HDU {w_index})")
        cards = {"VARSRC": ("weight", "variance = 1 / the weight (oow) file")}
    no_data |= ~np.isfinite(img)
    var[no_data] = np.inf
    msk[no_data] |= np.int32(1 << planes["NO_DATA"])
    return Exposure(
        img,
        msk,
        var,
        wcs,
        planes,
        metadata,
        str(image),
        sky_subtracted=formats.FORMAT_TABLE[fmt].sky_subtracted,
        cards=cards,
    )


def _read_fits(files, *, hdu, options):
    image = files["image"]
    fmt = "fits"
    with open_fits(image) as hdul:
        index, img = _plane(hdul, fmt=fmt, hdu=hdu, path=image)
        img = np.asarray(img, dtype=np.float32)
        metadata = _metadata(hdul, index, path=image)
        wcs = read_celestial_wcs(hdul[index].header, source=_image_source(image, fmt, index))
    planes = {**LSST_MASK_PLANES}
    table = {int(k): v for k, v in options["mask_table"].items()}
    if "mask" in files:
        raw, _ = _separate_plane(files["mask"], "mask", img.shape)
        planes = ensure_planes(planes, sorted(set(table.values())))
        msk = decode_mask(
            raw,
            options["mask_encoding"],
            table,
            planes,
            source=files["mask"],
            table_name="fits_format.mask_table",
        )
    else:
        msk = np.zeros(img.shape, dtype=np.int32)
        level, origin = _header_or_config(options, "saturation", metadata)
        if level is None:
            log.info(
                "%s: no mask file and no saturation level (fits_format.saturation, or the %s card); "
                "no pixel is flagged SAT",
                image,
                options["saturation_keyword"],
            )
        else:
            with np.errstate(invalid="ignore"):
                sat = img >= level
            msk[sat] |= np.int32(1 << planes["SAT"])
            log.info(
                "%s: %d pixels at or above the saturation level %g (%s) flagged SAT",
                image,
                sat.sum(),
                level,
                origin,
            )
    no_data = ~np.isfinite(img)
    if "variance" in files or "weight" in files:
        var, bad, cards = _noise_from_files(files, img.shape)
        no_data |= bad
    else:
        gain, origin = _header_or_config(options, "gain", metadata)
        if gain is None:
            msg = (
                f"{image}: format fits with no variance or weight file estimates the variance, and needs the gain: "
                f"set fits_format.gain, or fits_format.gain_keyword to a header card ({options['gain_keyword']!r} "
                "is not in the header)"
            )
            raise InputError(msg)
        if not gain > 0:
            raise InputError(f"{image}: the gain {gain} ({origin}) is not positive")
        usable = np.isfinite(img) & (msk == 0)
        var, level, sigma = estimate_variance(img, gain=gain, usable=usable, source=image)
        cards = {
            "VARSRC": ("estimated", "variance estimated from the image"),
            # comments that fit on the card (astropy would truncate them, with a warning); the
            # gain's origin, of any length, in a card of its own
            "VARGAIN": (float(gain), "gain used for the Poisson term [e/ADU]"),
            "VARGSRC": origin,
            "VARSKYSG": (float(sigma), "sky noise used (sigma-clipped) [ADU]"),
            "VARSKYLV": (float(level), "clipped-median sky under the Poisson term [ADU]"),
        }
        log.info(
            "%s: no variance or weight file: variance estimated as (image - %.6g) / gain %g + %.6g^2 "
            "(sky noise)",
            image,
            level,
            gain,
            sigma,
        )
    var = np.where(no_data, np.float32(np.inf), var).astype(np.float32)
    msk[no_data] |= np.int32(1 << planes["NO_DATA"])
    sky_subtracted = bool(options["sky_subtracted"])  # (the format's table leaves it to the config)
    return Exposure(
        img, msk, var, wcs, planes, metadata, str(image), sky_subtracted=sky_subtracted, cards=cards
    )


def _header_or_config(options, name, metadata):
    """A number from the config (``options[name]``) or else from the header card it names."""
    if options[name] is not None:
        return float(options[name]), f"fits_format.{name}"
    keyword = options[f"{name}_keyword"]
    if keyword and keyword in metadata:
        value = metadata[keyword]
        try:
            return float(value), f"header {keyword}"
        except (TypeError, ValueError):
            raise InputError(
                f"header card {keyword} = {value!r} is not a number (fits_format.{name}_keyword)"
            ) from None
    return None, ""


def noise_plane(values, *, kind, source):
    """Variance and no-data flags from a variance or weight plane: the one rule of every format.

    A pixel whose variance is not a finite positive number has no data: it is flagged (``NO_DATA``
    in the reader) and its variance is +inf, as the warp marks pixels without data. Weight
    (inverse variance) 0 is the usual mark of no data and passes silently; a variance that is 0,
    negative or not finite, and a weight that is negative or not finite, are not expected in
    calibrated data and are counted in a ``bad_variance`` notice.

    Parameters
    ----------
    values : numpy.ndarray
        The plane as read.
    kind : {'variance', 'weight'}
        What the plane holds.
    source : str
        File (and HDU) for the notice.

    Returns
    -------
    variance : numpy.ndarray
        float32.
    no_data : numpy.ndarray
        bool.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "weight":
            v = np.asarray(values, dtype=np.float64)
            var = (1.0 / v).astype(np.float32)  # (a tiny weight overflows: no data)
        else:  # one float32 copy, which the reader then marks: a whole-detector plane is large
            v = var = np.array(values, dtype=np.float32)
        good = np.isfinite(var) & (var > 0)
    no_data = ~good
    unexpected = no_data & (v != 0) if kind == "weight" else no_data
    if unexpected.any():
        odd = v[unexpected]
        with np.errstate(invalid="ignore"):
            parts = {
                "0": odd == 0,
                "negative": odd < 0,
                "NaN": np.isnan(odd),
                "infinite": np.isinf(odd),
                "too small to invert": (odd > 0) & np.isfinite(odd),
            }
        counts = ", ".join(f"{int(m.sum())} {name}" for name, m in parts.items() if m.any())
        notice(
            log,
            "bad_variance",
            "%s: %d pixels with a %s that is not usable (%s): flagged NO_DATA, variance +inf",
            source,
            int(unexpected.sum()),
            kind,
            counts,
        )
    var[no_data] = np.inf
    return var, no_data


def estimate_variance(image, *, gain, usable, source=""):
    """Estimate the variance of an image without one: sky noise squared plus a Poisson term.

    ``variance = sigma_sky^2 + max(image - sky, 0) / gain``. The sky noise ``sigma_sky`` is the
    sigma-clipped (3 sigma, MAD-based, astropy.stats) spread of the differences of adjacent
    pixels (along x and y), divided by sqrt(2): insensitive to the sky's gradients and to the
    wings of bright stars, which dominate a small image's pixel histogram (on the real DECam
    cut-outs it is within 10-20 % of the CP's weight map, where the image's own clipped spread is
    2-3 times too high). Noise correlated between adjacent pixels (resampled images) makes it
    an underestimate. The sky level is the sigma-clipped median of the usable pixels.

    Parameters
    ----------
    image : numpy.ndarray
        Image in ADU (counts, not rates).
    gain : float
        e-/ADU.
    usable : numpy.ndarray
        bool: pixels that may be used (finite, unflagged).
    source : str
        File name for the message.

    Returns
    -------
    variance : numpy.ndarray
        float32.
    sky_level, sky_sigma : float

    Raises
    ------
    InputError
        Too few usable pixels to measure the sky.
    """
    img = np.asarray(image, dtype=np.float64)
    diffs = np.concatenate(
        [
            (img[:, 1:] - img[:, :-1])[usable[:, 1:] & usable[:, :-1]],
            (img[1:, :] - img[:-1, :])[usable[1:, :] & usable[:-1, :]],
        ]
    )
    if diffs.size < 25:
        raise InputError(
            f"{source}: too few usable pixels ({diffs.size} adjacent pairs) to measure the sky noise"
        )
    _, _, sd = sigma_clipped_stats(diffs, sigma=3.0, maxiters=10, stdfunc="mad_std")
    sigma = float(sd) / np.sqrt(2.0)
    _, level, _ = sigma_clipped_stats(img[usable], sigma=3.0, maxiters=10, stdfunc="mad_std")
    level = float(level)
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(f"{source}: the sky noise cannot be measured (sigma {sigma})")
    with np.errstate(invalid="ignore"):
        var = sigma**2 + np.maximum(img - level, 0.0) / gain
    return var.astype(np.float32), level, sigma


def decode_mask(data, encoding, table, planes, *, source, table_name):
    """Map a mask of integer values or bits onto named planes.

    Parameters
    ----------
    data : numpy.ndarray
        Integer mask (integral floats are accepted).
    encoding : {'values', 'bits'}
        ``values``: each pixel holds one code (0 is good). ``bits``: each set bit is a flag.
    table : dict of int to str
        Code (``values``) or bit index (``bits``) -> plane name.
    planes : dict of str to int
        Plane name -> bit of the output; must hold every name in *table*.
    source, table_name : str
        For the message.

    Returns
    -------
    numpy.ndarray
        int32 mask.

    Raises
    ------
    InputError
        A value or bit that *table* does not map, or a non-integer mask.
    """
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not (finite.all() and np.array_equal(arr, np.round(arr))):
            raise InputError(f"{source}: the mask holds non-integer values")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iub":
        raise InputError(f"{source}: the mask is not an integer image ({arr.dtype})")
    arr = arr.astype(arr.dtype.newbyteorder("="))
    out = np.zeros(arr.shape, dtype=np.int32)
    if encoding == "values":
        values, counts = np.unique(arr, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            if value == 0:
                continue
            if value not in table:
                known = ", ".join(str(k) for k in sorted(table)) or "nothing"
                raise InputError(
                    f"{source}: mask value {value} ({count} pixels) is not in {table_name} (it maps {known})"
                )
            out[arr == value] |= np.int32(1 << planes[table[value]])
        return out
    if encoding != "bits":
        raise InputError(f"mask encoding {encoding!r} is not 'values' or 'bits'")
    unsigned = arr.view(np.dtype(f"u{arr.dtype.itemsize}")) if arr.dtype.kind == "i" else arr
    present = int(np.bitwise_or.reduce(unsigned.ravel())) if unsigned.size else 0
    bit = 0
    while present >> bit:
        if (present >> bit) & 1:
            flagged = (unsigned & unsigned.dtype.type(1 << bit)) != 0
            if bit not in table:
                known = ", ".join(str(k) for k in sorted(table)) or "nothing"
                msg = f"{source}: mask bit {bit} (value {1 << bit}, {int(flagged.sum())} pixels) is not in {table_name} (it maps bits {known})"
                raise InputError(msg)
            out[flagged] |= np.int32(1 << planes[table[bit]])
        bit += 1
    return out


def _check_shape(arr, img, source, name):
    if arr.shape != img.shape:
        raise InputError(f"{source}: {name} plane has shape {arr.shape}, the image {img.shape}")


def _separate_plane(path, what, shape):
    """The first 2-D HDU of a separate mask / variance / weight file, and its header."""
    with open_fits(path, what=f"{what} file") as hdul:
        index, data = _plane(hdul, fmt=None, plane=what, path=path)
        data = np.asarray(data)
        header = hdul[index].header.copy()
    if data.shape != tuple(shape):
        raise InputError(f"{path}: {what} plane has shape {data.shape}, the image {tuple(shape)}")
    return data, header


def _noise_from_files(files, shape):
    """Variance, no-data flags and provenance cards from a separate variance or weight file."""
    if "variance" in files:
        var, _ = _separate_plane(files["variance"], "variance", shape)
        var, no_data = noise_plane(var, kind="variance", source=files["variance"])
        return var, no_data, {"VARSRC": ("variance file", "variance read from a separate file")}
    weight, _ = _separate_plane(files["weight"], "weight", shape)
    var, no_data = noise_plane(weight, kind="weight", source=files["weight"])
    return var, no_data, {"VARSRC": ("weight", "variance = 1 / a weight (inverse variance) file")}


def _image_source(image, fmt, index):
    """The image's file as messages name it: with its HDU where the hdu column may pick one."""
    return f"{image} (HDU {index})" if formats.FORMAT_TABLE[fmt].hdu_column else image


def read_exposure_header(image, *, fmt, hdu=None):
    """Read only the WCS and metadata of an exposure (no pixels).

    Parameters
    ----------
    image : str
        The exposure's image file.
    fmt : {'lsst_calexp', 'decam_cp', 'fits'}
        Format of the file.
    hdu : int, str or None
        The image HDU of ``decam_cp`` and ``fits`` (None: the format's default,
        :func:`brightstamps.formats.find_hdu`).

    Returns
    -------
    wcs : astropy.wcs.WCS
    metadata : astropy.io.fits.Header
        Primary header merged with the image header; ``NAXIS1``/``NAXIS2`` are the image's.
    """
    formats.format_of(fmt, source=image)  # (before the file is opened)
    with open_fits(image) as hdul:
        index = formats.find_hdu(hdul, fmt=fmt, hdu=hdu, path=image)
        header = hdul[index].header
        metadata = _metadata(hdul, index, path=image)
        wcs = read_celestial_wcs(header, source=_image_source(image, fmt, index))
        check_wcs(wcs, (header["NAXIS2"], header["NAXIS1"]), source=image)
    return wcs, metadata


def _metadata(hdul, index, *, path):
    """The metadata of the image in HDU *index*: every card checked, the primary header merged in."""
    check_header_cards(hdul[0].header, source=f"{path} (HDU 0)")
    if not index:
        return hdul[0].header.copy()
    check_header_cards(hdul[index].header, source=f"{path} (HDU {index})")
    return _merged_metadata(hdul[0].header, hdul[index].header)


def _merged_metadata(primary, image_header):
    """The primary header with the image header's other cards; the image's own shape cards win."""
    metadata = primary.copy()
    for card in image_header.cards:
        if card.keyword not in ("", "COMMENT", "HISTORY") and card.keyword not in metadata:
            metadata[card.keyword] = (card.value, card.comment)
    for key in ("NAXIS", "NAXIS1", "NAXIS2"):
        if key in image_header:
            metadata[key] = image_header[key]
    return metadata


def observation_epoch(metadata, *, source=""):
    """Epoch of an exposure as an astropy Time, from MJD-OBS or DATE-OBS, or None.

    Raises
    ------
    InputError
        MJD-OBS that is not a finite number, or DATE-OBS that is not a date (naming *source*).
    """
    md = metadata
    if "MJD-OBS" in md:
        value = md["MJD-OBS"]
        try:  # (a number written as a string is taken; a logical is not a date)
            mjd = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            mjd = math.nan
        if not math.isfinite(mjd):
            msg = f"{source}: MJD-OBS = {value!r} is not a number (the observation's modified Julian date)"
            raise InputError(msg)
        return Time(mjd, format="mjd", scale="tai")
    if "DATE-OBS" in md:
        try:
            return Time(md["DATE-OBS"], scale="utc")
        except ValueError:
            msg = f"{source}: DATE-OBS = {md['DATE-OBS']!r} is not a date"
            raise InputError(msg) from None
    return None


def write_exposure(path, exposure, *, primary_cards=()):
    """Write *exposure* in the LSST calexp layout (image, mask with ``MP_*`` cards, variance).

    Parameters
    ----------
    path : str
        Destination; written atomically.
    exposure : Exposure
    primary_cards : iterable of (str, object)
        Extra primary-header cards (e.g. ``MJD-OBS``, ``BORE-RA``).
    """
    wcs_header = exposure.wcs.to_header(relax=True)
    primary = fits.PrimaryHDU()
    for key, value in primary_cards:
        primary.header[key] = value
    img = fits.ImageHDU(exposure.image.astype(np.float32), header=wcs_header, name="IMAGE")
    msk = fits.ImageHDU(exposure.mask.astype(np.int32), header=wcs_header, name="MASK")
    for key, bit in mask_plane_cards(exposure.mask_planes):
        msk.header[key] = bit
    var = fits.ImageHDU(exposure.variance.astype(np.float32), header=wcs_header, name="VARIANCE")
    with atomic_output(path) as tmp:
        fits.HDUList([primary, img, msk, var]).writeto(tmp)
