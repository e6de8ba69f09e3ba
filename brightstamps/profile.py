"""Radial profiles of stamps and of the extended PSF: bins, azimuthal means, errors, dynamic range."""

import numpy as np
from astropy.table import Table

__all__ = ["profile_edges", "azimuthal_profile", "model_profile", "dynamic_range", "flux_within"]


def profile_edges(max_radius):
    """Radial bins: the central pixel, 1 px wide rings to 10.5 px, then logarithmic to *max_radius*.

    Parameters
    ----------
    max_radius : float
        Outer radius (pixels), e.g. the distance from the star to the stamp's nearest edge.

    Returns
    -------
    numpy.ndarray
        ``0, 0.5, 1.5, ..., 10.5`` (pixel centres at integer radii fall mid-bin), then 24 bins of
        equal width in log r; only the edges up to *max_radius*.

    Examples
    --------
    >>> profile_edges(4).tolist()
    [0.0, 0.5, 1.5, 2.5, 3.5]
    """
    inner = np.concatenate([[0.0], np.arange(0.5, 11.0)])
    if max_radius <= inner[-1]:
        return inner[inner <= max_radius]
    return np.concatenate([inner, np.geomspace(inner[-1], max_radius, 25)[1:]])


def _bins(shape, center, edges, use):
    y, x = np.indices(shape)
    r = np.hypot(x - center[0], y - center[1])[use]
    which = np.searchsorted(edges, r, side="right") - 1
    inside = (which >= 0) & (which < len(edges) - 1)
    return r, which, inside


def azimuthal_profile(image, *, center, edges, good=None):
    """Azimuthally averaged radial profile: the mean of the good pixels in each annulus.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    center : (float, float)
        ``(x, y)`` of the centre, in pixels (0-based, pixel centres at integers).
    edges : array_like
        Increasing radii (pixels); bin ``i`` holds the pixels with ``edges[i] <= r < edges[i+1]``.
    good : numpy.ndarray of bool, optional
        Pixels to use; by default every finite pixel. Non-finite pixels are never used.

    Returns
    -------
    numpy.ndarray
        ``len(edges) - 1`` means; NaN where a bin holds no good pixel.

    Examples
    --------
    >>> azimuthal_profile(np.ones((5, 5)), center=(2, 2), edges=[0, 0.5, 1.2, 10, 20])
    array([ 1.,  1.,  1., nan])
    """
    image = np.asarray(image, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    use = np.isfinite(image)
    if good is not None:
        use &= np.asarray(good, dtype=bool)
    _, which, inside = _bins(image.shape, center, edges, use)
    nbins = len(edges) - 1
    sums = np.bincount(which[inside], weights=image[use][inside], minlength=nbins)[:nbins]
    counts = np.bincount(which[inside], minlength=nbins)[:nbins]
    out = np.full(nbins, np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def model_profile(image, variance, n, *, center, edges):
    """The radial profile of an extended PSF with its error: the PROFILE table of its file.

    Parameters
    ----------
    image, variance : numpy.ndarray
        The model and its per-pixel variance.
    n : numpy.ndarray of int
        Stars stacked in each pixel; pixels with none (or a non-finite value or variance) are
        left out.
    center : (float, float)
        ``(x, y)`` of the star's pixel.
    edges : array_like
        Bin edges (:func:`profile_edges`).

    Returns
    -------
    astropy.table.Table
        One row per bin: ``r_in``, ``r_out``, ``radius`` (mean radius of the pixels used),
        ``value`` (their mean), ``error`` (its standard error from the variance plane:
        ``sqrt(sum variance) / npix``; neighbouring pixels of a warped stack are correlated, so
        this is a lower bound), ``nstars`` (median stars per pixel) and ``npix``. Empty bins hold
        NaN and 0.
    """
    image = np.asarray(image, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    n = np.asarray(n)
    edges = np.asarray(edges, dtype=np.float64)
    use = np.isfinite(image) & np.isfinite(variance) & (n > 0)
    r, which, inside = _bins(image.shape, center, edges, use)
    nbins = len(edges) - 1
    idx = which[inside]
    npix = np.bincount(idx, minlength=nbins)[:nbins]

    def mean_of(values):
        sums = np.bincount(idx, weights=values[inside], minlength=nbins)[:nbins]
        out = np.full(nbins, np.nan)
        np.divide(sums, npix, out=out, where=npix > 0)
        return out

    value = mean_of(image[use])
    error = np.sqrt(mean_of(variance[use]) / np.maximum(npix, 1))
    error[npix == 0] = np.nan
    nstars = np.zeros(nbins)
    counts = n[use][inside]
    for b in np.flatnonzero(npix):
        nstars[b] = np.median(counts[idx == b])
    return Table(
        {
            "r_in": edges[:-1],
            "r_out": edges[1:],
            "radius": mean_of(r),
            "value": value,
            "error": error,
            "nstars": nstars.astype(np.int64),
            "npix": npix.astype(np.int64),
        }
    )


def dynamic_range(profile):
    """Decades from the profile's peak to where its signal-to-noise first falls to 1.

    Parameters
    ----------
    profile : astropy.table.Table
        :func:`model_profile`'s table.

    Returns
    -------
    decades : float
        ``log10(peak / value)`` at the last bin, counted outwards, before the first whose
        ``value / error`` is below 1 (or the last bin); NaN for a profile with no positive value.
    radius : float
        That bin's mean radius (pixels); NaN likewise.
    """
    value = np.asarray(profile["value"], float)
    error = np.asarray(profile["error"], float)
    radius = np.asarray(profile["radius"], float)
    ok = np.isfinite(value) & np.isfinite(error)
    if not np.any(ok & (value > 0)):
        return float("nan"), float("nan")
    peak = np.nanmax(np.where(ok, value, np.nan))
    last = None
    for k in np.flatnonzero(ok):
        if value[k] <= 0 or value[k] < error[k]:
            break
        last = k
    if last is None:
        return float("nan"), float("nan")
    return float(np.log10(peak / value[last])), float(radius[last])


def flux_within(image, radius, *, center=None):
    """The sum of *image* over the pixels whose centres lie within *radius* of *center*.

    This is the extended PSF's flux normalization (``FLUXRAD``): a model normalized to 1 has
    ``flux_within(model, FLUXRAD) == 1``.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image; non-finite pixels inside the circle make the result NaN (a model with no core
        has no flux).
    radius : float
        Pixels; the circle includes ``r <= radius``.
    center : (float, float), optional
        ``(x, y)``; by default the central pixel ``((nx - 1) // 2, (ny - 1) // 2)``.

    Returns
    -------
    float

    Examples
    --------
    >>> flux_within(np.ones((5, 5)), 1)
    5.0
    """
    image = np.asarray(image, dtype=np.float64)
    if center is None:
        center = ((image.shape[1] - 1) // 2, (image.shape[0] - 1) // 2)
    y, x = np.indices(image.shape)
    inside = np.hypot(x - center[0], y - center[1]) <= radius
    return float(np.sum(image[inside]))
