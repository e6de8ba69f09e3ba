"""Given sky-model files: recognise the format, check it and build the model (:mod:`~brightstamps.skymodels`).

Each format becomes a :class:`~brightstamps.skymodels.GivenSky`, evaluated over boxes, never at
full size: a full-size image (:class:`~brightstamps.skymodels.ImageSky`), a binned model
(:class:`~brightstamps.skymodels.BinnedSky`) or an LSST skyCorr
(:class:`~brightstamps.skymodels.SkyCorrSky`).

Binned model (ours): the first 2-D image HDU holds one value per bin, shape ``(nby, nbx)``; its
header (or the primary header) carries

- ``IMNX``, ``IMNY`` (required): size of the exposure the model is for, in pixels;
- ``INTERP`` (required): the interpolation between bin centres, a method of scipy's
  ``RegularGridInterpolator`` (``linear``, ``slinear``, ``cubic``, ``quintic``, ``pchip``); beyond the
  outermost centres it extrapolates with the same method;
- ``BINX0``, ``BINDX``, ``BINY0``, ``BINDY`` (optional, all four or none): 0-based pixel position
  of the first bin centre and the spacing of the centres along x and y. Without them the bins
  follow afw's rule (:func:`brightstamps.skymodels.bin_edges`) and the centres are
  ``start + size/2 - 0.5`` (:func:`brightstamps.skymodels.bin_centers`).

skyCorr (LSST ``BackgroundList``, see the write-up section 7): an optional empty primary HDU, then
three HDUs per element (image, mask, variance of the low-resolution "stats image", one value per
bin). The element's image header holds ``INTERPSTYLE`` (CONSTANT 0, LINEAR 1, NATURAL_SPLINE 2,
CUBIC_SPLINE 3, AKIMA_SPLINE 5), ``UNDERSAMPLESTYLE`` (THROW 0, REDUCE_INTERP_ORDER 1, INCREASE 2)
and ``BKGD_X0/Y0/WIDTH/HEIGHT``. Each element is rebuilt as afw's ``BackgroundMI.getImage`` does
(:class:`~brightstamps.skymodels.SkyCorrSky`: afw bin edges ``end_i = min(((i+1) W + nx//2)//nx, W)``,
centres ``start + size/2 - 0.5``, y then x, NaN bins dropped, afw's end extrapolation); the model
is the sum of the elements. Pixel coordinates are local to the element's box (``BKGD_X0/Y0``),
i.e. the exposure's array indices (a calexp has xy0 = 0). The ``APPROX*`` cards are not read:
elements are rebuilt by interpolation, as LSST's sky correction writes them; a
Chebyshev-approximated background would not be reproduced.
"""

import numpy as np
from astropy.io import fits

from .errors import InputError
from .files import open_fits, sha256_file
from .skymodels import BinnedSky, ImageSky, SkyCorrSky, bin_centers

__all__ = ["AFW_STYLES", "INTERP_METHODS", "read_given_sky"]

#: Interpolation methods of the binned format (scipy RegularGridInterpolator).
INTERP_METHODS = ("linear", "slinear", "cubic", "quintic", "pchip")

#: afw ``Interpolate.Style`` values.
AFW_STYLES = {0: "CONSTANT", 1: "LINEAR", 2: "NATURAL_SPLINE", 3: "CUBIC_SPLINE", 5: "AKIMA_SPLINE"}
_UNDERSAMPLE = {0: "THROW", 1: "REDUCE_INTERP_ORDER", 2: "INCREASE_NXNYSAMPLE"}
_SKYCORR_CARDS = ("INTERPSTYLE", "BKGD_X0", "BKGD_Y0", "BKGD_WIDTH", "BKGD_HEIGHT")


def _card(header, key, path, what):
    if key not in header:
        raise InputError(f"{path}: {what} lacks the {key} card")
    return header[key]


def _read_binned(path, hdu, primary, shape):
    """The arguments of :class:`~brightstamps.skymodels.BinnedSky` from a checked binned-model HDU."""
    header = fits.Header(primary)
    header.update(hdu.header)
    what = "binned sky model"
    model_shape = (int(_card(header, "IMNY", path, what)), int(_card(header, "IMNX", path, what)))
    if model_shape != tuple(shape):
        raise InputError(
            f"{path}: binned sky model is for an image of shape {model_shape}, the exposure has {tuple(shape)}"
        )
    method = str(_card(header, "INTERP", path, what)).strip().lower()
    if method not in INTERP_METHODS:
        raise InputError(f"{path}: INTERP {method!r} is not one of {', '.join(INTERP_METHODS)}")
    values = np.asarray(hdu.data, dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"{path}: binned sky model has non-finite bins")
    nby, nbx = values.shape
    given = [k in header for k in ("BINX0", "BINDX", "BINY0", "BINDY")]
    if any(given) and not all(given):
        raise InputError(f"{path}: binned sky model needs all of BINX0, BINDX, BINY0, BINDY or none")
    if all(given):
        xcen = float(header["BINX0"]) + float(header["BINDX"]) * np.arange(nbx)
        ycen = float(header["BINY0"]) + float(header["BINDY"]) * np.arange(nby)
        if float(header["BINDX"]) <= 0 or float(header["BINDY"]) <= 0:
            raise InputError(f"{path}: BINDX and BINDY must be positive")
    else:
        xcen, ycen = bin_centers(model_shape[1], nbx), bin_centers(model_shape[0], nby)
    need = {"linear": 2, "slinear": 2, "cubic": 4, "quintic": 6, "pchip": 4}[method]
    if min(nbx, nby) < need:
        raise InputError(
            f"{path}: INTERP {method} needs at least {need} bins per axis, the model has {nby} x {nbx}"
        )
    return {"values": values, "ycen": ycen, "xcen": xcen, "method": method}


def _read_skycorr(path, hdul, shape):
    """The arguments of :class:`~brightstamps.skymodels.SkyCorrSky` from a checked skyCorr file."""
    hdus = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2]
    if len(hdus) % 3:
        raise InputError(
            f"{path}: a skyCorr file has 3 image HDUs (image, mask, variance) per element; it has {len(hdus)}"
        )
    elements = []
    for image in hdus[::3]:
        h = image.header
        for key in _SKYCORR_CARDS:
            _card(h, key, path, f"skyCorr element (HDU {hdul.index(image)})")
        style = AFW_STYLES.get(int(h["INTERPSTYLE"]))
        if style is None:
            raise InputError(f"{path}: INTERPSTYLE {h['INTERPSTYLE']} is not one of {AFW_STYLES}")
        undersample = _UNDERSAMPLE.get(int(h.get("UNDERSAMPLESTYLE", 1)), "THROW")
        size = (int(h["BKGD_HEIGHT"]), int(h["BKGD_WIDTH"]))
        if size != tuple(shape):
            raise InputError(
                f"{path}: skyCorr element (HDU {hdul.index(image)}) is for an image of shape {size}, "
                f"the exposure has {tuple(shape)}"
            )
        stats = np.asarray(image.data, dtype=np.float64)
        if style == "CONSTANT" and stats.size > 1:
            raise InputError(f"{path}: INTERPSTYLE CONSTANT with more than one bin is not supported")
        elements.append(
            {"stats": stats, "style": style, "undersample": undersample, "width": size[1], "height": size[0]}
        )
    if not elements:
        raise InputError(f"{path}: skyCorr file holds no element")
    return {"elements": elements}


def read_given_sky(path, *, shape):
    """Read a given sky-model file, recognising its format.

    Parameters
    ----------
    path : str
        FITS file: an LSST skyCorr (image HDUs with INTERPSTYLE cards), a binned model (IMNX /
        IMNY cards) or a full-size image.
    shape : tuple of int
        ``(ny, nx)`` of the exposure.

    Returns
    -------
    brightstamps.skymodels.GivenSky
        :class:`~brightstamps.skymodels.SkyCorrSky`, :class:`~brightstamps.skymodels.BinnedSky`
        or :class:`~brightstamps.skymodels.ImageSky` (its first 2-D image HDU, read by box),
        with the file's path and SHA-256.

    Raises
    ------
    brightstamps.errors.InputError
        For a file that is missing or unreadable, holds no 2-D image, or whose format's cards,
        bins or shape are wrong.
    """
    with open_fits(path, what="sky model file", memmap=True) as hdul:
        images = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2]
        if not images:
            raise InputError(f"{path}: no 2-D image HDU holding a sky model")
        if "INTERPSTYLE" in images[0].header:
            model, args = SkyCorrSky, _read_skycorr(path, hdul, shape)
        elif "IMNX" in images[0].header or "IMNX" in hdul[0].header:
            model, args = BinnedSky, _read_binned(path, images[0], hdul[0].header, shape)
        elif images[0].shape != tuple(shape):
            raise InputError(
                f"{path}: sky model has shape {images[0].shape}, the exposure {tuple(shape)} "
                "(a binned model needs IMNX, IMNY and INTERP cards)"
            )
        else:
            model, args = ImageSky, {"hdu": hdul.index(images[0])}
    return model(shape, **args, path=str(path), sha256=sha256_file(path))
