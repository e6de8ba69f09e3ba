"""Given sky-model files: a binned model with its interpolation, and LSST's ``skyCorr`` BackgroundList.

Both are evaluated over boxes (:meth:`evaluate`), never at full size.

Binned model (ours): the first 2-D image HDU holds one value per bin, shape ``(nby, nbx)``; its
header (or the primary header) carries

- ``IMNX``, ``IMNY`` (required): size of the exposure the model is for, in pixels;
- ``INTERP`` (required): the interpolation between bin centres, a method of scipy's
  ``RegularGridInterpolator`` (``linear``, ``slinear``, ``cubic``, ``quintic``, ``pchip``); beyond the
  outermost centres it extrapolates with the same method;
- ``BINX0``, ``BINDX``, ``BINY0``, ``BINDY`` (optional, all four or none): 0-based pixel position
  of the first bin centre and the spacing of the centres along x and y. Without them the bins
  follow afw's rule (:func:`brightstamps.sky.bin_edges`) and the centres are ``start + size/2 - 0.5``.

skyCorr (LSST ``BackgroundList``, see the write-up section 7): an optional empty primary HDU, then
three HDUs per element (image, mask, variance of the low-resolution "stats image", one value per
bin). The element's image header holds ``INTERPSTYLE`` (CONSTANT 0, LINEAR 1, NATURAL_SPLINE 2,
CUBIC_SPLINE 3, AKIMA_SPLINE 5), ``UNDERSAMPLESTYLE`` (THROW 0, REDUCE_INTERP_ORDER 1, INCREASE 2)
and ``BKGD_X0/Y0/WIDTH/HEIGHT``. Each element is rebuilt as afw's ``BackgroundMI.getImage`` does:
bin edges ``end_i = min(((i+1) W + nx//2)//nx, W)``, centres ``start + size/2 - 0.5``; interpolate
along y for each bin column, then along x for each row; NaN bins are dropped, and with
REDUCE_INTERP_ORDER a style needing more points than remain is reduced (1 point: constant, 2:
linear, 3-4: cubic spline, 5+: Akima). Outside the outermost centres afw extrapolates
quadratically from the end point's first and second derivatives; so do we. The model is the sum
of the elements. Pixel coordinates are local to the element's box (``BKGD_X0/Y0``), i.e. the
exposure's array indices (a calexp has xy0 = 0). The ``APPROX*`` cards are not read: elements are
rebuilt by interpolation, as LSST's sky correction writes them; a Chebyshev-approximated
background would not be reproduced. Splines are scipy's (``CubicSpline`` natural, ``Akima1DInterpolator``); GSL's
Akima end slopes differ slightly from scipy's, so AKIMA elements match afw to a small fraction of
the bin-to-bin variation, not bit for bit.
"""

import numpy as np
from astropy.io import fits
from scipy.interpolate import Akima1DInterpolator, CubicSpline, RegularGridInterpolator, make_interp_spline

from .errors import InputError
from .files import open_fits

__all__ = ["AFW_STYLES", "INTERP_METHODS", "BinnedSky", "SkyCorr", "bin_centers", "read_given_sky"]

#: Interpolation methods of the binned format (scipy RegularGridInterpolator).
INTERP_METHODS = ("linear", "slinear", "cubic", "quintic", "pchip")

#: afw ``Interpolate.Style`` values and the fewest points each needs.
AFW_STYLES = {0: "CONSTANT", 1: "LINEAR", 2: "NATURAL_SPLINE", 3: "CUBIC_SPLINE", 5: "AKIMA_SPLINE"}
_MIN_POINTS = {"CONSTANT": 1, "LINEAR": 2, "NATURAL_SPLINE": 3, "CUBIC_SPLINE": 3, "AKIMA_SPLINE": 5}
_UNDERSAMPLE = {0: "THROW", 1: "REDUCE_INTERP_ORDER", 2: "INCREASE_NXNYSAMPLE"}
_SKYCORR_CARDS = ("INTERPSTYLE", "BKGD_X0", "BKGD_Y0", "BKGD_WIDTH", "BKGD_HEIGHT")


def bin_centers(size, nbins):
    """afw's bin centres along an axis of *size* pixels cut into *nbins* bins: ``start + size/2 - 0.5``.

    Examples
    --------
    >>> bin_centers(10, 3).tolist()
    [1.0, 4.5, 8.0]
    """
    from .sky import bin_edges

    edges = bin_edges(size, nbins)
    return edges[:-1] + (edges[1:] - edges[:-1]) / 2 - 0.5


class BinnedSky:
    """A binned sky model evaluated with scipy's ``RegularGridInterpolator``.

    Parameters
    ----------
    values : numpy.ndarray
        ``(nby, nbx)`` bin values.
    ycen, xcen : numpy.ndarray
        Bin centres (0-based pixels), increasing.
    method : str
        One of :data:`INTERP_METHODS`.
    """

    def __init__(self, values, ycen, xcen, method):
        self.values = np.asarray(values, dtype=np.float64)
        self.ycen, self.xcen = np.asarray(ycen, float), np.asarray(xcen, float)
        self.method = method
        self._interp = RegularGridInterpolator((self.ycen, self.xcen), self.values, method=method,
                                               bounds_error=False, fill_value=None)

    def evaluate(self, y0, y1, x0, x1):
        """The model over rows ``y0:y1`` and columns ``x0:x1``, float64."""
        yy, xx = np.meshgrid(np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float), indexing="ij")
        return self._interp((yy, xx))


def _interpolate_1d(x, y, style, at):
    """afw ``Interpolate`` of style *style* through (x, y), at *at*, with afw's end extrapolation."""
    if style == "CONSTANT":
        return np.full((len(at),) + y.shape[1:], y[0], dtype=np.float64)  # only used for one point
    if style == "LINEAR":
        f = make_interp_spline(x, y, k=1)
    elif style in ("NATURAL_SPLINE", "CUBIC_SPLINE"):
        f = CubicSpline(x, y, bc_type="natural")  # GSL's cspline has natural end conditions
    else:
        f = Akima1DInterpolator(x, y)
    out = f(at)
    for outside, x_end in ((at < x[0], x[0]), (at > x[-1], x[-1])):
        if outside.any():
            # afw: y0 + (x - x0) d + (x - x0)^2 d2 / 2 from the end point's derivatives
            dx = (at[outside] - x_end).reshape((-1,) + (1,) * (y.ndim - 1))
            d1 = f(x_end, 1)
            d2 = 0.0 if style == "LINEAR" else f(x_end, 2)
            out[outside] = f(x_end) + dx * d1 + 0.5 * dx**2 * d2
    return out


class SkyCorr:
    """LSST ``skyCorr`` (an afw BackgroundList): the sum of its elements, evaluated by box.

    Parameters
    ----------
    elements : list of dict
        Each with ``stats`` (``(ny, nx)`` bin values), ``style`` and ``undersample`` (afw names),
        ``width`` and ``height`` (pixels).
    path : str
        The file, named in errors.
    """

    def __init__(self, elements, path):
        self.elements = elements
        self.path = str(path)

    def _style(self, element, n, axis):
        style = element["style"]
        if n >= _MIN_POINTS[style]:
            return style
        if element["undersample"] != "REDUCE_INTERP_ORDER":
            raise InputError(f"{self.path}: {n} valid bin(s) along {axis} are too few for {style} "
                             f"and UNDERSAMPLESTYLE is {element['undersample']}")
        return "CONSTANT" if n == 1 else "LINEAR" if n == 2 else "CUBIC_SPLINE" if n < 5 else "AKIMA_SPLINE"

    def _element(self, e, rows, cols):
        stats = e["stats"]
        nby, nbx = stats.shape
        ycen, xcen = bin_centers(e["height"], nby), bin_centers(e["width"], nbx)
        # along y first, for each bin column (NaN bins dropped; an all-NaN column drops out)
        columns = np.full((len(rows), nbx), np.nan)
        for ix in range(nbx):
            ok = np.isfinite(stats[:, ix])
            if ok.any():
                columns[:, ix] = _interpolate_1d(ycen[ok], stats[ok, ix], self._style(e, ok.sum(), "y"), rows)
        ok = np.isfinite(columns[0]) if len(rows) else np.ones(nbx, bool)
        if not ok.any():
            raise InputError(f"{self.path}: a skyCorr element has no valid bin")
        # then along x, all rows at once (they share the valid columns)
        return _interpolate_1d(xcen[ok], columns[:, ok].T, self._style(e, ok.sum(), "x"), cols).T

    def evaluate(self, y0, y1, x0, x1):
        """The summed model over rows ``y0:y1`` and columns ``x0:x1``, float64."""
        rows, cols = np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float)
        total = np.zeros((len(rows), len(cols)))
        for e in self.elements:
            total += self._element(e, rows, cols)
        return total


def _card(header, key, path, what):
    if key not in header:
        raise InputError(f"{path}: {what} lacks the {key} card")
    return header[key]


def _read_binned(path, hdu, primary, shape):
    header = fits.Header(primary)
    header.update(hdu.header)
    what = "binned sky model"
    model_shape = (int(_card(header, "IMNY", path, what)), int(_card(header, "IMNX", path, what)))
    if model_shape != tuple(shape):
        raise InputError(f"{path}: binned sky model is for an image of shape {model_shape}, the exposure has {tuple(shape)}")
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
        raise InputError(f"{path}: INTERP {method} needs at least {need} bins per axis, the model has {nby} x {nbx}")
    return BinnedSky(values, ycen, xcen, method)


def _read_skycorr(path, hdul, shape):
    hdus = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2]
    if len(hdus) % 3:
        raise InputError(f"{path}: a skyCorr file has 3 image HDUs (image, mask, variance) per element; it has {len(hdus)}")
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
            raise InputError(f"{path}: skyCorr element (HDU {hdul.index(image)}) is for an image of shape {size}, "
                             f"the exposure has {tuple(shape)}")
        stats = np.asarray(image.data, dtype=np.float64)
        if style == "CONSTANT" and stats.size > 1:
            raise InputError(f"{path}: INTERPSTYLE CONSTANT with more than one bin is not supported")
        elements.append({"stats": stats, "style": style, "undersample": undersample,
                         "width": size[1], "height": size[0]})
    if not elements:
        raise InputError(f"{path}: skyCorr file holds no element")
    return SkyCorr(elements, path)


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
    kind : {'skycorr', 'binned', 'image'}
    evaluator : SkyCorr or BinnedSky or None
        ``None`` for a full-size image (read by box from the file).
    """
    with open_fits(path, what="sky model file", memmap=True) as hdul:
        images = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2]
        if not images:
            raise InputError(f"{path}: no 2-D image HDU holding a sky model")
        if "INTERPSTYLE" in images[0].header:
            return "skycorr", _read_skycorr(path, hdul, shape)
        if "IMNX" in images[0].header or "IMNX" in hdul[0].header:
            return "binned", _read_binned(path, images[0], hdul[0].header, shape)
        if images[0].shape != tuple(shape):
            raise InputError(f"{path}: sky model has shape {images[0].shape}, the exposure {tuple(shape)} "
                             "(a binned model needs IMNX, IMNY and INTERP cards)")
    return "image", None
