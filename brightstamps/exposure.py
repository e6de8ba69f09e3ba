"""Calibrated exposures: image, mask, variance and WCS, read from and written to FITS."""

import dataclasses
import logging
import warnings

import numpy as np
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning

from .errors import InputError
from .files import atomic_output, open_fits
from .masks import mask_plane_cards, read_mask_planes

__all__ = [
    "Exposure",
    "FORMATS",
    "read_exposure",
    "read_exposure_header",
    "read_celestial_wcs",
    "check_wcs",
    "observation_epoch",
    "write_exposure",
]

log = logging.getLogger(__name__)

#: Exposure formats understood by :func:`read_exposure`.
FORMATS = ("lsst_calexp",)


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
        Primary header merged with the image header (MJD-OBS, BORE-RA, ...).
    path : str
        File the exposure was read from.
    """

    image: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    wcs: WCS
    mask_planes: dict
    metadata: fits.Header
    path: str = ""

    @property
    def shape(self):
        """``(ny, nx)`` of the image."""
        return self.image.shape


def _image_hdu(hdul, index, *, path, what):
    if index >= len(hdul) or hdul[index].header.get("NAXIS", 0) != 2:
        msg = f"{path}: HDU {index} should hold the 2-D {what} plane (LSST calexp layout: 1 image, 2 mask, 3 variance)"
        raise InputError(msg)
    try:
        data = hdul[index].data
    except (OSError, ValueError, TypeError) as err:
        msg = f"{path}: HDU {index} ({what}) cannot be read: {err} (truncated file?)"
        raise InputError(msg) from None
    if data is None:
        msg = f"{path}: HDU {index} ({what}) has no data"
        raise InputError(msg)
    return data


def read_celestial_wcs(header, *, source):
    """Build a celestial WCS from *header*, or fail with one line naming *source*."""
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
    return wcs.celestial


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
    points = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1], [(nx - 1) / 2, (ny - 1) / 2]], float)
    try:
        with np.errstate(all="ignore"):
            world = wcs.all_pix2world(points, 0)
            back = wcs.all_world2pix(world, 0, quiet=True)
    except Exception as err:  # singular matrices, divergent distortions, ...
        raise InputError(f"{source}: the WCS cannot be inverted over the detector ({err})") from None
    error = np.hypot(*(back - points).T)
    if not np.all(np.isfinite(world)) or not np.all(error < 0.01):
        worst = int(np.nanargmax(np.where(np.isfinite(error), error, np.inf)))
        msg = (f"{source}: the WCS cannot be inverted over the detector (pixel {tuple(points[worst])} maps back "
               f"to {tuple(np.round(back[worst], 3))})")
        raise InputError(msg)


def read_exposure(image, *, mask=None, variance=None, fmt="lsst_calexp"):
    """Read one exposure.

    Parameters
    ----------
    image : str
        FITS file. In the ``lsst_calexp`` layout it holds the image (HDU 1), mask with ``MP_*``
        cards (HDU 2) and variance (HDU 3).
    mask, variance : str or None
        Separate files for the mask / variance (first image HDU), overriding HDUs 2 / 3.
    fmt : {'lsst_calexp'}
        Layout of the files.

    Returns
    -------
    Exposure

    Raises
    ------
    InputError
        A file that is missing, unreadable, lacks a plane, a WCS or the mask-plane cards, or
        planes of mismatched shapes.
    """
    if fmt not in FORMATS:
        msg = f"{image}: format {fmt!r} is not supported (supported: {', '.join(FORMATS)})"
        raise InputError(msg)
    with open_fits(image) as hdul:
        img = np.asarray(_image_hdu(hdul, 1, path=image, what="image"), dtype=np.float32)
        metadata = _merged_metadata(hdul[0].header, hdul[1].header)
        wcs = read_celestial_wcs(hdul[1].header, source=image)
        if mask is None:
            msk = _image_hdu(hdul, 2, path=image, what="mask")
            planes = read_mask_planes(hdul[2].header, source=f"{image} (HDU 2)")
            msk = np.asarray(msk, dtype=np.int32)
        if variance is None:
            var = np.asarray(_image_hdu(hdul, 3, path=image, what="variance"), dtype=np.float32)
    if mask is not None:
        with open_fits(mask) as hdul:
            idx = 0 if hdul[0].header.get("NAXIS", 0) == 2 else 1
            msk = np.asarray(_image_hdu(hdul, idx, path=mask, what="mask"), dtype=np.int32)
            planes = read_mask_planes(hdul[idx].header, source=mask)
    if variance is not None:
        with open_fits(variance) as hdul:
            idx = 0 if hdul[0].header.get("NAXIS", 0) == 2 else 1
            var = np.asarray(_image_hdu(hdul, idx, path=variance, what="variance"), dtype=np.float32)
    for name, arr, src in (("mask", msk, mask or image), ("variance", var, variance or image)):
        if arr.shape != img.shape:
            msg = f"{src}: {name} plane has shape {arr.shape}, the image {img.shape}"
            raise InputError(msg)
    if not np.isfinite(img).any():
        raise InputError(f"{image}: the image has no finite pixel")
    check_wcs(wcs, img.shape, source=image)
    return Exposure(img, msk, var, wcs, planes, metadata, str(image))


def read_exposure_header(image, *, fmt="lsst_calexp"):
    """Read only the WCS and metadata of an exposure (no pixels).

    Parameters
    ----------
    image : str
        The exposure's image file.
    fmt : {'lsst_calexp'}
        Layout of the file.

    Returns
    -------
    wcs : astropy.wcs.WCS
    metadata : astropy.io.fits.Header
        Primary header merged with the image header.
    """
    if fmt not in FORMATS:
        msg = f"{image}: format {fmt!r} is not supported (supported: {', '.join(FORMATS)})"
        raise InputError(msg)
    with open_fits(image) as hdul:
        if len(hdul) < 2:
            msg = f"{image}: HDU 1 should hold the 2-D image plane (LSST calexp layout: 1 image, 2 mask, 3 variance)"
            raise InputError(msg)
        metadata = _merged_metadata(hdul[0].header, hdul[1].header)
        wcs = read_celestial_wcs(hdul[1].header, source=image)
        if hdul[1].header.get("NAXIS", 0) != 2:
            raise InputError(f"{image}: HDU 1 should hold the 2-D image plane")
        check_wcs(wcs, (hdul[1].header["NAXIS2"], hdul[1].header["NAXIS1"]), source=image)
    return wcs, metadata


def _merged_metadata(primary, image_header):
    metadata = primary.copy()
    for card in image_header.cards:
        if card.keyword not in ("", "COMMENT", "HISTORY") and card.keyword not in metadata:
            metadata[card.keyword] = (card.value, card.comment)
    return metadata


def observation_epoch(metadata, *, source=""):
    """Epoch of an exposure as an astropy Time, from MJD-OBS or DATE-OBS, or None."""
    md = metadata
    if "MJD-OBS" in md:
        return Time(float(md["MJD-OBS"]), format="mjd", scale="tai")
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
