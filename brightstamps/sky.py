"""Sky correction: a given sky model, or one fitted in meshes, stored compactly and evaluated by box.

The model is never written at full size: a fitted model is stored as its binned values plus the
bin geometry and interpolation, and a given model file (full-size image, binned model or LSST
skyCorr, see :mod:`brightstamps.skyfiles`) is referenced by path and checksum.
The stamp-extraction step evaluates the model over each cut-out's box only.
"""

import logging

import numpy as np
from astropy.io import fits
from scipy.interpolate import RectBivariateSpline
from scipy.ndimage import distance_transform_edt

from .errors import InputError
from .files import atomic_output, open_fits, path_card_value, path_from_card, sha256_file
from .masks import plane_bits
from .skyfiles import read_given_sky
from .stats import clipped_statistic

__all__ = ["SkyModel", "bin_edges", "fit_sky", "make_sky_model", "read_sky_model", "write_sky_model"]

log = logging.getLogger(__name__)

_MODES = ("NONE", "FIT", "BINNED", "GIVEN")


def bin_edges(size, nbins):
    """Contiguous bin edges of afw's BackgroundMI: bin i ends at ``min(((i+1)*size + nbins//2)//nbins, size)``.

    Parameters
    ----------
    size : int
        Image size along the axis, in pixels.
    nbins : int
        Number of bins.

    Returns
    -------
    numpy.ndarray
        ``nbins + 1`` integer edges, first 0 and last *size*.
    """
    ends = [min(((i + 1) * size + nbins // 2) // nbins, size) for i in range(nbins)]
    return np.array([0, *ends], dtype=np.int64)


class SkyModel:
    """A sky model over an image of shape ``(ny, nx)``, evaluated over boxes.

    Parameters
    ----------
    mode : {'NONE', 'FIT', 'BINNED', 'GIVEN'}
        ``NONE``: zero sky. ``FIT``/``BINNED``: binned values interpolated with a bicubic
        spline (fitted here, or read from a binned file). ``GIVEN``: a given model file.
    shape : tuple of int
        ``(ny, nx)`` of the exposure.
    binned : numpy.ndarray, optional
        ``(nby, nbx)`` bin values (FIT/BINNED).
    path, sha256 : str, optional
        The full-size model file and its checksum (GIVEN).
    source : str, optional
        Where the model came from, for provenance.
    kind : {'image', 'binned', 'skycorr'}
        Format of a GIVEN file.
    evaluator : object, optional
        Box evaluator of a binned or skyCorr GIVEN file (:mod:`brightstamps.skyfiles`).
    """

    def __init__(self, mode, shape, *, binned=None, path=None, sha256=None, source="", kind="image",
                 evaluator=None):
        if mode not in _MODES:
            raise ValueError(f"unknown sky model mode {mode!r}")
        self.mode = mode
        self.shape = tuple(int(s) for s in shape)
        self.binned = None if binned is None else np.asarray(binned, dtype=np.float64)
        self.path = path
        self.sha256 = sha256
        self.source = source
        self.kind = kind
        self._evaluator = evaluator
        self._spline = None

    def _interpolator(self):
        if self._spline is None:
            ny, nx = self.shape
            nby, nbx = self.binned.shape
            ye, xe = bin_edges(ny, nby), bin_edges(nx, nbx)
            yc = (ye[:-1] + ye[1:]) / 2 - 0.5
            xc = (xe[:-1] + xe[1:]) / 2 - 0.5
            vals = self.binned
            # a single bin along an axis means a constant along it: give the spline two knots
            if nby == 1:
                yc, vals = np.array([-0.5, ny - 0.5]), np.vstack([vals, vals])
            if nbx == 1:
                xc, vals = np.array([-0.5, nx - 0.5]), np.hstack([vals, vals])
            ky, kx = min(3, len(yc) - 1), min(3, len(xc) - 1)
            self._spline = RectBivariateSpline(
                yc, xc, vals, kx=ky, ky=kx, s=0, bbox=[-0.5, ny - 0.5, -0.5, nx - 0.5]
            )
        return self._spline

    def evaluate(self, y0, y1, x0, x1):
        """The sky over rows ``y0:y1`` and columns ``x0:x1`` (inside the image), float64."""
        if self.mode == "NONE":
            return np.zeros((y1 - y0, x1 - x0))
        if self.mode == "GIVEN" and self._evaluator is not None:
            return self._evaluator.evaluate(y0, y1, x0, x1)
        if self.mode == "GIVEN":
            with fits.open(self.path, memmap=True) as hdul:
                return np.array(_first_image(hdul, self.path).data[y0:y1, x0:x1], dtype=np.float64)
        spline = self._interpolator()
        return spline(np.arange(y0, y1, dtype=float), np.arange(x0, x1, dtype=float), grid=True)


def _first_image(hdul, path):
    for hdu in hdul:
        if hdu.header.get("NAXIS", 0) == 2 and hdu.is_image:
            return hdu
    msg = f"{path}: no 2-D image HDU holding a sky model"
    raise InputError(msg)


def fit_sky(exposure, *, mesh_size, num_sigma_clip, num_iter, mask_planes, min_valid_fraction):
    """Fit a smooth sky: a clipped mean in meshes of unmasked pixels, spline-interpolated.

    Parameters
    ----------
    exposure : brightstamps.exposure.Exposure
        The exposure (its mask's DETECTED plane masks the sources).
    mesh_size : int
        Mesh (bin) size in pixels; the image is cut into ``round(n / mesh_size)`` bins per axis.
    num_sigma_clip : float
        Clip width of the MEANCLIP statistic in each mesh.
    num_iter : int
        Clip iterations.
    mask_planes : list of str
        Pixels with any of these planes are left out (sources: DETECTED).
    min_valid_fraction : float
        A mesh with a smaller fraction of usable pixels gets the value of its nearest good mesh.

    Returns
    -------
    SkyModel
        Mode ``FIT``.

    Raises
    ------
    InputError
        If no mesh has enough usable pixels.
    """
    ny, nx = exposure.shape
    nby, nbx = max(1, round(ny / mesh_size)), max(1, round(nx / mesh_size))
    ye, xe = bin_edges(ny, nby), bin_edges(nx, nbx)
    bad = plane_bits(exposure.mask_planes, mask_planes, field="sky_fit.mask_planes")
    usable = ((exposure.mask & bad) == 0) & np.isfinite(exposure.image)
    binned = np.full((nby, nbx), np.nan)
    for j in range(nby):
        for i in range(nbx):
            sl = (slice(ye[j], ye[j + 1]), slice(xe[i], xe[i + 1]))
            ok = usable[sl]
            if ok.mean() < min_valid_fraction or ok.sum() < 2:
                continue
            value, _, _ = clipped_statistic(
                exposure.image[sl][ok], statistic="MEANCLIP", num_sigma_clip=num_sigma_clip, num_iter=num_iter
            )
            binned[j, i] = value
    missing = ~np.isfinite(binned)
    if missing.all():
        msg = f"{exposure.path}: no mesh has {min_valid_fraction:.0%} usable pixels; cannot fit a sky"
        raise InputError(msg)
    if missing.any():
        log.info("%d of %d sky meshes are mostly masked; filled from their nearest good mesh", missing.sum(), missing.size)
        _, (iy, ix) = distance_transform_edt(missing, return_indices=True)
        binned = binned[iy, ix]
    return SkyModel("FIT", exposure.shape, binned=binned, source=f"fit: {nby}x{nbx} meshes")


def make_sky_model(exposure, *, sky_model_path, do_apply_sky_corr, fit):
    """Choose and build the sky model of step 1 (sky correction).

    A sky-model file given for the exposure is used when ``do_apply_sky_corr`` is true.
    Otherwise a sky is fitted if ``fit['enabled']``, or always if the exposure's format leaves the
    sky in the image (``exposure.sky_subtracted`` false: DECam CP, generic FITS unless the config
    says it is subtracted); otherwise the sky is left as it is. With ``fit['header_keyword']`` the
    "fitted" sky is instead the constant that header card gives (e.g. the DECam CP's whole-CCD
    ``AVSKY``), for cut-outs too small to measure their own sky.

    Parameters
    ----------
    exposure : brightstamps.exposure.Exposure
    sky_model_path : str or None
        The exposure's ``sky_model`` file: a full-size image (first 2-D HDU), a binned model or
        an LSST skyCorr (:mod:`brightstamps.skyfiles`), or a model written by :func:`write_sky_model`.
    do_apply_sky_corr : bool
        Subtract the given model (LSST ``doApplySkyCorr``).
    fit : dict
        ``enabled`` plus the keyword arguments of :func:`fit_sky`.

    Returns
    -------
    SkyModel
    """
    if sky_model_path and do_apply_sky_corr:
        return read_sky_model(sky_model_path, shape=exposure.shape)
    sky_in_image = not getattr(exposure, "sky_subtracted", True)
    if fit["enabled"] or sky_in_image:
        if sky_in_image and not fit["enabled"]:
            fmt = exposure.cards.get("EXPFMT", ("",))[0] if getattr(exposure, "cards", None) else ""
            log.info("%s: the sky is not subtracted in this %s image and no sky model is applied: fitting one "
                     "(sky_fit settings; sky_fit.enabled is false)", exposure.path, fmt or "exposure's")
        keyword = fit.get("header_keyword", "")
        if keyword:
            return _header_sky(exposure, keyword)
        options = {k: v for k, v in fit.items() if k not in ("enabled", "header_keyword")}
        return fit_sky(exposure, **options)
    return SkyModel("NONE", exposure.shape, source="none")


def _header_sky(exposure, keyword):
    """A constant sky from the exposure's header card *keyword* (sky_fit.header_keyword)."""
    value = exposure.metadata.get(keyword)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = np.nan
    if not np.isfinite(value):
        msg = f"{exposure.path}: sky_fit.header_keyword {keyword}: the header has no finite {keyword} card"
        raise InputError(msg)
    log.info("%s: sky = %s = %.3f (constant)", exposure.path, keyword, value)
    return SkyModel("BINNED", exposure.shape, binned=np.array([[value]]), source=f"header card {keyword}")


def read_sky_model(path, *, shape):
    """Read a sky model file: our compact format, or a given file (full-size image, binned, skyCorr).

    Parameters
    ----------
    path : str
        FITS file.
    shape : tuple of int
        Expected ``(ny, nx)`` of the exposure.

    Returns
    -------
    SkyModel
    """
    with open_fits(path, what="sky model file", memmap=True) as hdul:
        mode = hdul[0].header.get("SKYMODE")
        if mode is not None:
            if mode not in _MODES:
                raise InputError(f"{path}: SKYMODE {mode!r} is not one of {_MODES}")
            model_shape = (hdul[0].header["IMNY"], hdul[0].header["IMNX"])
            if model_shape != tuple(shape):
                raise InputError(f"{path}: sky model is for an image of shape {model_shape}, the exposure has {tuple(shape)}")
            if mode in ("FIT", "BINNED"):
                source = hdul[0].header.get("SKYSRC")
                return SkyModel(mode, shape, binned=hdul["SKYBINS"].data,
                                source=path if source is None else path_from_card(source))
            if mode == "GIVEN":
                return read_sky_model(path_from_card(hdul[0].header["SKYFILE"]), shape=shape)
            return SkyModel("NONE", shape, source="none")
    kind, evaluator = read_given_sky(path, shape=shape)
    return SkyModel("GIVEN", shape, path=str(path), sha256=sha256_file(path), source=str(path), kind=kind,
                    evaluator=evaluator)


def write_sky_model(path, model):
    """Write *model* compactly: binned values, or a reference to a given full-size file.

    ``SKYSRC`` (the model's origin) and ``SKYFILE`` (a given file) are written by
    :func:`brightstamps.files.path_card_value`, so any path can be read back.

    Parameters
    ----------
    path : str
        Destination, written atomically.
    model : SkyModel
    """
    primary = fits.PrimaryHDU()
    h = primary.header
    h["SKYMODE"] = (model.mode, "NONE, FIT, BINNED or GIVEN")
    h["IMNY"], h["IMNX"] = model.shape
    h["SKYSRC"] = path_card_value(str(model.source))  # origin of the model: a description or a file
    hdus = [primary]
    if model.mode in ("FIT", "BINNED"):
        h["SKYINTRP"] = ("bicubic spline through bin centres", "interpolation")
        h["BINRULE"] = ("end_i=min(((i+1)*N+nb//2)//nb,N)", "afw bin edges")
        hdus.append(fits.ImageHDU(model.binned, name="SKYBINS"))
    elif model.mode == "GIVEN":
        h["SKYFILE"] = path_card_value(model.path)  # sky model subtracted (long paths use CONTINUE cards)
        h["SKYSHA"] = model.sha256  # sha256 of SKYFILE
        h["SKYKIND"] = (model.kind, "image, binned or skycorr")
    with atomic_output(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
