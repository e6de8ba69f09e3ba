"""Sky models evaluated by box, and afw's bin geometry they share.

Every model is a :class:`SkyModel` over an exposure of shape ``(ny, nx)`` with one method,
``evaluate(y0, y1, x0, x1)``: the sky over rows ``y0:y1`` and columns ``x0:x1`` (inside the
image), float64. None is ever evaluated at full size unless asked to.

============================  ===========  ======================================================
class                         ``mode``     the sky
============================  ===========  ======================================================
:class:`NoSky`                ``NONE``     zero: the sky is left in (or already out of) the image
:class:`MeshSky`              ``FIT``      a mesh fitted here, a bicubic spline through its bins
:class:`HeaderSky`            ``BINNED``   a header card's constant (stored as a one-bin mesh)
:class:`ImageSky`             ``GIVEN``    a given full-size image, read by box
:class:`BinnedSky`            ``GIVEN``    a given binned model with its interpolation
:class:`SkyCorrSky`           ``GIVEN``    a given LSST skyCorr (afw BackgroundList)
============================  ===========  ======================================================

``mode`` is the ``SKYMODE`` card of the step's ``sky_model.fits`` and of the stamps; given
models also have ``kind`` (``SKYKIND``: ``image``, ``binned``, ``skycorr``), ``path`` and
``sha256``. "Binned" means one thing only: a given binned model file
(:mod:`brightstamps.skyfiles`); a fitted or header sky is a mesh (``SKYMODE BINNED`` is the
card value of the header constant, kept so that the file format does not change).

Bin geometry is afw's (``BackgroundMI``) for all of them: :func:`bin_edges`, :func:`bin_centers`.
"""

import numpy as np
from astropy.io import fits
from scipy.interpolate import (
    Akima1DInterpolator,
    CubicSpline,
    RectBivariateSpline,
    RegularGridInterpolator,
    make_interp_spline,
)

from .errors import InputError

__all__ = [
    "BinnedSky",
    "GivenSky",
    "HeaderSky",
    "ImageSky",
    "MeshSky",
    "NoSky",
    "SkyCorrSky",
    "SkyModel",
    "bin_centers",
    "bin_edges",
]

#: The fewest points each afw ``Interpolate.Style`` needs.
_MIN_POINTS = {"CONSTANT": 1, "LINEAR": 2, "NATURAL_SPLINE": 3, "CUBIC_SPLINE": 3, "AKIMA_SPLINE": 5}


# --------------------------------------------------------------------------------------------
# Bin geometry
# --------------------------------------------------------------------------------------------


def bin_edges(size, nbins):
    """Contiguous bin edges of afw's BackgroundMI: bin i ends at ``min(((i+1)*N + nbins//2)//nbins, N)``.

    Parameters
    ----------
    size : int
        Image size N along the axis, in pixels.
    nbins : int
        Number of bins.

    Returns
    -------
    numpy.ndarray
        ``nbins + 1`` integer edges, first 0 and last *size*.

    Examples
    --------
    >>> bin_edges(10, 3).tolist()
    [0, 3, 7, 10]
    """
    ends = [min(((i + 1) * size + nbins // 2) // nbins, size) for i in range(nbins)]
    return np.array([0, *ends], dtype=np.int64)


def bin_centers(size, nbins):
    """Bin centres of afw along an axis of *size* pixels cut into *nbins* bins: ``start + size/2 - 0.5``.

    Parameters
    ----------
    size : int
        Image size along the axis, in pixels.
    nbins : int
        Number of bins (:func:`bin_edges`).

    Returns
    -------
    numpy.ndarray
        ``nbins`` 0-based pixel positions, float64.

    Examples
    --------
    >>> bin_centers(10, 3).tolist()
    [1.0, 4.5, 8.0]
    """
    edges = bin_edges(size, nbins)
    return edges[:-1] + (edges[1:] - edges[:-1]) / 2 - 0.5


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


class SkyModel:
    """A sky model over an exposure of shape ``(ny, nx)``; subclasses define :meth:`evaluate`.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    source : str
        Where the model came from, for provenance (``SKYSRC``).
    """

    #: ``SKYMODE`` card: NONE, FIT, BINNED or GIVEN.
    mode = ""
    #: The given model file (None: the model is no file's).
    path = None

    def __init__(self, shape, *, source):
        self.shape = tuple(int(s) for s in shape)
        self.source = source

    def evaluate(self, y0, y1, x0, x1):
        """The sky over rows ``y0:y1`` and columns ``x0:x1`` (inside the image), float64."""
        raise NotImplementedError


class NoSky(SkyModel):
    """Zero sky: the image is used as it is.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    """

    mode = "NONE"

    def __init__(self, shape):
        super().__init__(shape, source="none")

    def evaluate(self, y0, y1, x0, x1):
        """Zeros of the box's shape."""
        return np.zeros((y1 - y0, x1 - x0))


class MeshSky(SkyModel):
    """One value per mesh (afw bins, :func:`bin_edges`), a bicubic spline through the bin centres.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    values : array_like
        ``(nby, nbx)`` mesh values (``SKYBINS``).
    source : str
        Where the model came from.
    """

    mode = "FIT"

    def __init__(self, shape, values, *, source):
        super().__init__(shape, source=source)
        self.values = np.asarray(values, dtype=np.float64)
        ny, nx = self.shape
        nby, nbx = self.values.shape
        yc, xc = bin_centers(ny, nby), bin_centers(nx, nbx)
        vals = self.values
        # a single bin along an axis means a constant along it: give the spline two knots
        if nby == 1:
            yc, vals = np.array([-0.5, ny - 0.5]), np.vstack([vals, vals])
        if nbx == 1:
            xc, vals = np.array([-0.5, nx - 0.5]), np.hstack([vals, vals])
        ky, kx = min(3, len(yc) - 1), min(3, len(xc) - 1)
        self._spline = RectBivariateSpline(
            yc, xc, vals, kx=ky, ky=kx, s=0, bbox=[-0.5, ny - 0.5, -0.5, nx - 0.5]
        )

    def evaluate(self, y0, y1, x0, x1):
        """The spline at the box's pixel centres."""
        return self._spline(np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float), grid=True)


class HeaderSky(MeshSky):
    """A constant sky from a header card (``sky_fit.header_keyword``, e.g. the DECam CP's ``AVSKY``).

    Stored and evaluated as a one-bin :class:`MeshSky`, so that the step's file gives back the
    very numbers the model gives.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    value : float
        The sky level.
    source : str
        Where the model came from (``header card <KEYWORD>``).
    """

    mode = "BINNED"

    def __init__(self, shape, value, *, source):
        super().__init__(shape, np.array([[value]], dtype=np.float64), source=source)


class GivenSky(SkyModel):
    """A sky-model file given for the exposure (see :mod:`brightstamps.skyfiles`); referenced, not copied.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    path : str
        The file (``SKYFILE``; also the ``source``).
    sha256 : str
        Its SHA-256 (``SKYSHA``).
    """

    mode = "GIVEN"
    #: ``SKYKIND`` card: image, binned or skycorr.
    kind = ""

    def __init__(self, shape, *, path, sha256):
        super().__init__(shape, source=str(path))
        self.path = str(path)
        self.sha256 = sha256


class ImageSky(GivenSky):
    """A given full-size image, read by box from its HDU.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure (and of the image).
    path, sha256 : str
        See :class:`GivenSky`.
    hdu : int
        Index of the image HDU.
    """

    kind = "image"

    def __init__(self, shape, *, path, sha256, hdu):
        super().__init__(shape, path=path, sha256=sha256)
        self.hdu = int(hdu)

    def evaluate(self, y0, y1, x0, x1):
        """The image's pixels in the box."""
        with fits.open(self.path, memmap=True) as hdul:
            return np.array(hdul[self.hdu].data[y0:y1, x0:x1], dtype=np.float64)


class BinnedSky(GivenSky):
    """A given binned model evaluated with scipy's ``RegularGridInterpolator``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    values : numpy.ndarray
        ``(nby, nbx)`` bin values.
    ycen, xcen : numpy.ndarray
        Bin centres (0-based pixels), increasing.
    method : str
        One of :data:`brightstamps.skyfiles.INTERP_METHODS`; beyond the outermost centres it
        extrapolates with the same method.
    path, sha256 : str
        See :class:`GivenSky`.
    """

    kind = "binned"

    def __init__(self, shape, values, ycen, xcen, method, *, path, sha256):
        super().__init__(shape, path=path, sha256=sha256)
        self.values = np.asarray(values, dtype=np.float64)
        self.ycen, self.xcen = np.asarray(ycen, float), np.asarray(xcen, float)
        self.method = method
        self._interp = RegularGridInterpolator(
            (self.ycen, self.xcen), self.values, method=method, bounds_error=False, fill_value=None
        )

    def evaluate(self, y0, y1, x0, x1):
        """The interpolated model at the box's pixel centres."""
        yy, xx = np.meshgrid(np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float), indexing="ij")
        return self._interp((yy, xx))


def _interpolate_1d(x, y, style, at):
    """The afw ``Interpolate`` of style *style* through (x, y), at *at*, with afw's end extrapolation."""
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


class SkyCorrSky(GivenSky):
    """LSST ``skyCorr`` (an afw BackgroundList): the sum of its elements, evaluated by box.

    Each element is rebuilt as afw's ``BackgroundMI.getImage`` does: afw bin centres
    (:func:`bin_centers`); interpolate along y for each bin column, then along x for each row;
    NaN bins are dropped, and with REDUCE_INTERP_ORDER a style needing more points than remain
    is reduced (1 point: constant, 2: linear, 3-4: cubic spline, 5+: Akima). Outside the
    outermost centres afw extrapolates quadratically from the end point's first and second
    derivatives; so do we. Splines are scipy's (``CubicSpline`` natural, ``Akima1DInterpolator``);
    GSL's Akima end slopes differ slightly from scipy's, so AKIMA elements match afw to a small
    fraction of the bin-to-bin variation, not bit for bit.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    elements : list of dict
        Each with ``stats`` (``(ny, nx)`` bin values), ``style`` and ``undersample`` (afw names),
        ``width`` and ``height`` (pixels).
    path, sha256 : str
        See :class:`GivenSky`; the file is named in errors.
    """

    kind = "skycorr"

    def __init__(self, shape, elements, *, path, sha256):
        super().__init__(shape, path=path, sha256=sha256)
        self.elements = elements

    def _style(self, element, n, axis):
        style = element["style"]
        if n >= _MIN_POINTS[style]:
            return style
        if element["undersample"] != "REDUCE_INTERP_ORDER":
            raise InputError(
                f"{self.path}: {n} valid bin(s) along {axis} are too few for {style} "
                f"and UNDERSAMPLESTYLE is {element['undersample']}"
            )
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
        """The summed model over the box."""
        rows, cols = np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float)
        total = np.zeros((len(rows), len(cols)))
        for e in self.elements:
            total += self._element(e, rows, cols)
        return total
