"""Step 1, sky correction: choose the exposure's sky model, or fit one in meshes; store it compactly.

The models are the classes of :mod:`brightstamps.skymodels`, evaluated by box. The step's
``sky_model.fits`` never holds the model at full size: a fitted mesh or a header constant is
stored as its mesh values (with afw's bin rule and the interpolation named in the header), and a
given model file (full-size image, binned model or LSST skyCorr, see :mod:`brightstamps.skyfiles`)
is referenced by path and checksum. The stamp-extraction step reads it back
(:func:`read_sky_model`) and evaluates the model over each cut-out's box only.
"""

import logging

import numpy as np
from astropy.io import fits
from scipy.ndimage import distance_transform_edt

from .errors import InputError
from .files import atomic_output, open_fits, path_card_value, path_from_card
from .masks import plane_bits
from .skyfiles import read_given_sky
from .skymodels import GivenSky, HeaderSky, MeshSky, NoSky, bin_edges
from .stats import clipped_statistic

__all__ = ["fit_sky", "make_sky_model", "read_sky_model", "write_sky_model"]

log = logging.getLogger(__name__)

#: Values of the ``SKYMODE`` card (:attr:`brightstamps.skymodels.SkyModel.mode`).
_MODES = ("NONE", "FIT", "BINNED", "GIVEN")


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
    brightstamps.skymodels.MeshSky

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
    values = np.full((nby, nbx), np.nan)
    for j in range(nby):
        for i in range(nbx):
            sl = (slice(ye[j], ye[j + 1]), slice(xe[i], xe[i + 1]))
            ok = usable[sl]
            if ok.mean() < min_valid_fraction or ok.sum() < 2:
                continue
            value, _, _ = clipped_statistic(
                exposure.image[sl][ok], statistic="MEANCLIP", num_sigma_clip=num_sigma_clip, num_iter=num_iter
            )
            values[j, i] = value
    missing = ~np.isfinite(values)
    if missing.all():
        msg = f"{exposure.path}: no mesh has {min_valid_fraction:.0%} usable pixels; cannot fit a sky"
        raise InputError(msg)
    if missing.any():
        log.info(
            "%d of %d sky meshes are mostly masked; filled from their nearest good mesh",
            missing.sum(),
            missing.size,
        )
        _, (iy, ix) = distance_transform_edt(missing, return_indices=True)
        values = values[iy, ix]
    return MeshSky(exposure.shape, values, source=f"fit: {nby}x{nbx} meshes")


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
    brightstamps.skymodels.SkyModel
        A given model (:func:`read_sky_model`), a fitted :class:`~brightstamps.skymodels.MeshSky`,
        a :class:`~brightstamps.skymodels.HeaderSky` or :class:`~brightstamps.skymodels.NoSky`.
    """
    if sky_model_path and do_apply_sky_corr:
        return read_sky_model(sky_model_path, shape=exposure.shape)
    sky_in_image = not getattr(exposure, "sky_subtracted", True)
    if fit["enabled"] or sky_in_image:
        if sky_in_image and not fit["enabled"]:
            fmt = exposure.cards.get("EXPFMT", ("",))[0] if getattr(exposure, "cards", None) else ""
            log.info(
                "%s: the sky is not subtracted in this %s image and no sky model is applied: fitting one "
                "(sky_fit settings; sky_fit.enabled is false)",
                exposure.path,
                fmt or "exposure's",
            )
        keyword = fit.get("header_keyword", "")
        if keyword:
            return _header_sky(exposure, keyword)
        options = {k: v for k, v in fit.items() if k not in ("enabled", "header_keyword")}
        return fit_sky(exposure, **options)
    return NoSky(exposure.shape)


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
    return HeaderSky(exposure.shape, value, source=f"header card {keyword}")


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
    brightstamps.skymodels.SkyModel
        As written by :func:`write_sky_model` (a reference to a given file gives that file's
        model), or the given file's (:func:`brightstamps.skyfiles.read_given_sky`).

    Raises
    ------
    brightstamps.errors.InputError
        For an unreadable file, an unknown ``SKYMODE``, a model for another shape, or a given
        file that :func:`~brightstamps.skyfiles.read_given_sky` rejects.
    """
    with open_fits(path, what="sky model file", memmap=True) as hdul:
        h = hdul[0].header
        mode = h.get("SKYMODE")
        if mode is not None:
            if mode not in _MODES:
                raise InputError(f"{path}: SKYMODE {mode!r} is not one of {_MODES}")
            model_shape = (h["IMNY"], h["IMNX"])
            if model_shape != tuple(shape):
                raise InputError(
                    f"{path}: sky model is for an image of shape {model_shape}, the exposure has {tuple(shape)}"
                )
            if mode in ("FIT", "BINNED"):
                source = path if h.get("SKYSRC") is None else path_from_card(h["SKYSRC"])
                values = hdul["SKYBINS"].data
                if mode == "FIT":
                    return MeshSky(shape, values, source=source)
                if values.shape != (1, 1):
                    raise InputError(
                        f"{path}: SKYMODE BINNED is a header card's constant, one bin; SKYBINS "
                        f"has shape {values.shape}"
                    )
                return HeaderSky(shape, values[0, 0], source=source)
            if mode == "GIVEN":
                return read_sky_model(path_from_card(h["SKYFILE"]), shape=shape)
            return NoSky(shape)
    return read_given_sky(path, shape=shape)


def write_sky_model(path, model):
    """Write *model* compactly: its mesh values, or a reference to a given file.

    The primary header holds ``SKYMODE`` (the model's :attr:`~brightstamps.skymodels.SkyModel.mode`),
    ``IMNY``, ``IMNX`` and ``SKYSRC`` (its origin); a mesh (fitted, or a header constant) adds
    ``SKYINTRP``, ``BINRULE`` and its values in the ``SKYBINS`` image; a given file adds
    ``SKYFILE``, ``SKYSHA`` and ``SKYKIND``. ``SKYSRC`` and ``SKYFILE`` are written by
    :func:`brightstamps.files.path_card_value`, so any path can be read back.

    Parameters
    ----------
    path : str
        Destination, written atomically.
    model : brightstamps.skymodels.SkyModel
    """
    primary = fits.PrimaryHDU()
    h = primary.header
    h["SKYMODE"] = (model.mode, "NONE, FIT, BINNED or GIVEN")
    h["IMNY"], h["IMNX"] = model.shape
    h["SKYSRC"] = path_card_value(str(model.source))  # origin of the model: a description or a file
    hdus = [primary]
    if isinstance(model, MeshSky):
        h["SKYINTRP"] = ("bicubic spline through bin centres", "interpolation")
        h["BINRULE"] = ("end_i=min(((i+1)*N+nb//2)//nb,N)", "afw bin edges")
        hdus.append(fits.ImageHDU(model.values, name="SKYBINS"))
    elif isinstance(model, GivenSky):
        h["SKYFILE"] = path_card_value(model.path)  # sky model subtracted (long paths use CONTINUE cards)
        h["SKYSHA"] = model.sha256  # sha256 of SKYFILE
        h["SKYKIND"] = (model.kind, "image, binned or skycorr")
    with atomic_output(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)
