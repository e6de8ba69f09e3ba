"""Normalization: divide each stamp by its annular flux (the cores of bright stars are saturated)."""

import logging

import numpy as np

from .config import check_annulus
from .masks import plane_bits
from .stampsfile import BLOCK, StampStream
from .stats import clipped_statistic

__all__ = ["annulus_mask", "annular_flux", "normalize_stamps"]

log = logging.getLogger(__name__)


def annulus_mask(shape, center, inner_radius, outer_radius):
    """Pixels whose integer offsets from *center* satisfy ``inner^2 < dx^2 + dy^2 <= outer^2``.

    This is afw's ``SpanSet.fromShape`` circle of the outer radius minus that of the inner one.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)``.
    center : tuple of int
        ``(x, y)`` central pixel.
    inner_radius, outer_radius : int
        Radii in pixels, ``outer - inner >= 1``.

    Returns
    -------
    numpy.ndarray of bool

    Raises
    ------
    brightstamps.errors.InputError
        Unless the radii are ordered and the outer circle lies inside the stamp
        (:func:`brightstamps.config.check_annulus`, the check the workflow makes before any job).

    Examples
    --------
    >>> int(annulus_mask((275, 275), (137, 137), 70, 80).sum())
    4708
    """
    check_annulus((inner_radius, outer_radius), (shape[1], shape[0]), center=center)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    d2 = (xx - center[0]) ** 2 + (yy - center[1]) ** 2
    return (d2 > inner_radius**2) & (d2 <= outer_radius**2)


def annular_flux(image, mask, annulus, *, bad_bits, statistic, num_sigma_clip, num_iter):
    """Statistic of one stamp's annulus and its valid fraction, as ``measureAndNormalize`` does.

    Parameters
    ----------
    image, mask : numpy.ndarray
        ``(H, W)`` stamp planes.
    annulus : numpy.ndarray of bool
        From :func:`annulus_mask`.
    bad_bits : int
        OR of the bad mask planes; a pixel is used iff finite and ``mask & bad_bits == 0``.
    statistic : {'MEAN', 'MEDIAN', 'MEANCLIP'}
    num_sigma_clip : float
    num_iter : int

    Returns
    -------
    flux : float
        The statistic (NaN if no pixel is usable).
    valid_fraction : float
        Fraction of annulus pixels whose mask is exactly 0 (as coded in LSST: DETECTED-only
        pixels count as invalid here though the statistic uses them).
    """
    values = image[annulus]
    bits = mask[annulus]
    valid_fraction = np.count_nonzero(bits == 0) / values.size
    flux, _, _ = clipped_statistic(
        values,
        valid=(bits & bad_bits) == 0,
        statistic=statistic,
        num_sigma_clip=num_sigma_clip,
        num_iter=num_iter,
    )
    return flux, valid_fraction


def normalize_stamps(
    stamps,
    *,
    annular_flux_radii,
    annular_flux_statistic,
    num_sigma_clip,
    num_iter,
    bad_mask_planes,
    min_valid_annulus_fraction,
    discard_nan_flux_stars,
    normalize_variance,
    block=BLOCK,
):
    """Step 5 (normalization): measure each stamp's annular flux and divide the image by it.

    Failure rules, in LSST's order: (a) not ``#clean > area * min_valid_annulus_fraction``
    (strict), (b) a NaN statistic, (c) a negative statistic. A failed stamp keeps its image
    un-normalized and gets ``annular_flux`` NaN, unless ``discard_nan_flux_stars`` drops it.
    The fluxes are measured in a first pass over the stamps; the stream divides in a second.

    Parameters
    ----------
    stamps : brightstamps.stampsfile.Stamps
        Warped stamps (star on ``CENTERX``, ``CENTERY``), in memory or memory-mapped.
    annular_flux_radii : sequence of int
        Inner and outer radius in pixels.
    annular_flux_statistic : {'MEAN', 'MEDIAN', 'MEANCLIP'}
    num_sigma_clip : float
    num_iter : int
    bad_mask_planes : list of str
    min_valid_annulus_fraction : float
    discard_nan_flux_stars : bool
    normalize_variance : bool
        Also divide the variance by the flux squared (a deliberate deviation: LSST leaves the
        variance in exposure units).
    block : int
        Stamps read at a time.

    Returns
    -------
    brightstamps.stampsfile.StampStream
        Normalized stamps, made as the stream is consumed. STARS gains ``annular_flux``,
        ``valid_annulus_fraction`` and ``norm_status`` (``ok``, ``few_valid_pixels``, ``nan_flux``
        or ``negative_flux``).
    """
    inner, outer = (int(r) for r in annular_flux_radii)
    center = (int(stamps.header["CENTERX"]), int(stamps.header["CENTERY"]))
    ny, nx = stamps.stamp_shape
    annulus = annulus_mask((ny, nx), center, inner, outer)
    area = int(annulus.sum())
    bad_bits = plane_bits(stamps.mask_planes, bad_mask_planes, field="bad_mask_planes")
    n = len(stamps)
    fluxes = np.full(n, np.nan)
    fractions = np.zeros(n)
    status = np.empty(n, dtype="U16")
    k = 0
    for image, mask, _ in stamps.blocks(block):
        for i in range(len(image)):
            flux, fraction = annular_flux(
                image[i],
                mask[i],
                annulus,
                bad_bits=bad_bits,
                statistic=annular_flux_statistic,
                num_sigma_clip=num_sigma_clip,
                num_iter=num_iter,
            )
            fractions[k] = fraction
            if not round(fraction * area) > area * min_valid_annulus_fraction:
                status[k] = "few_valid_pixels"
            elif not np.isfinite(flux):
                status[k] = "nan_flux"
            elif flux < 0:
                status[k] = "negative_flux"
            else:
                status[k] = "ok"
                fluxes[k] = flux
            k += 1
    stars = stamps.stars.copy()
    stars["annular_flux"] = fluxes
    stars["valid_annulus_fraction"] = fractions
    stars["norm_status"] = status
    failed = status != "ok"
    if failed.any():
        log.warning(
            "%d of %d stars failed normalization (%s)",
            failed.sum(),
            n,
            ", ".join(f"{s}: {np.sum(status == s)}" for s in np.unique(status[failed])),
        )
    header = dict(stamps.header)
    header.update(
        {
            "STAGE": "normalized",
            "INNERRAD": (inner, "annulus inner radius [px]"),
            "OUTERRAD": (outer, "annulus outer radius [px]"),
            "NORMSTAT": (annular_flux_statistic, "annulus statistic"),
            "NORMED": (True, "stamps normalized by annular flux"),
            "VARNORM": (bool(normalize_variance), "variance divided by annular flux squared"),
            "NFAILED": (int(failed.sum()), "stars whose normalization failed"),
        }
    )
    keep = ~failed if discard_nan_flux_stars else np.ones(n, dtype=bool)
    if not keep.all():
        header["NDISCARD"] = (int(failed.sum()), "failed stars discarded")
    # image (and variance) divided by the flux where it was measured, in float32 as LSST does
    scale = np.where(status == "ok", fluxes, 1.0).astype(np.float32)

    def blocks():
        start = 0
        for image, mask, variance in stamps.blocks(block):
            part = slice(start, start + len(image))
            kept, factor = keep[part], scale[part][keep[part], None, None]
            image = image[kept] / factor
            variance = variance[kept] / factor**2 if normalize_variance else variance[kept]
            start += len(mask)
            yield image, mask[kept], variance

    return StampStream(stars[keep], dict(stamps.mask_planes), header, tuple(stamps.stamp_shape), blocks())
