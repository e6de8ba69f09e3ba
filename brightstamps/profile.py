"""Radial profiles of stamps and of the extended PSF: bins, azimuthal means, errors, dynamic range."""

import numpy as np
from astropy.table import Table

from .errors import InputError
from .normalize import annulus_mask

__all__ = [
    "profile_edges",
    "azimuthal_profile",
    "model_pixels",
    "model_profile",
    "dynamic_range",
    "wing_noise",
    "noise_reached",
    "flux_within",
    "table_edges",
    "on_grid",
    "normalized_like",
    "reference_profile",
    "compare_profiles",
]


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


def model_pixels(image, variance, n):
    """The pixels of an extended PSF its profile uses: a finite value and variance, and a star stacked.

    Parameters
    ----------
    image, variance : numpy.ndarray
        The model and its per-pixel variance.
    n : numpy.ndarray of int
        Stars stacked in each pixel.

    Returns
    -------
    numpy.ndarray of bool
    """
    return np.isfinite(image) & np.isfinite(variance) & (np.asarray(n) > 0)


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
    use = model_pixels(image, variance, n)
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


def wing_noise(profile):
    """The profile's error at its dynamic-range radius: where the azimuthal mean meets its noise.

    The lower end of a display stretch that shows the model from its peak down to the faintest
    wings it measures (:func:`dynamic_range`).

    Parameters
    ----------
    profile : astropy.table.Table
        :func:`model_profile`'s table.

    Returns
    -------
    float
        ``error`` of the last bin before the signal-to-noise first falls below 1; NaN when
        :func:`dynamic_range` finds none.
    """
    _, radius = dynamic_range(profile)
    hit = np.flatnonzero(np.asarray(profile["radius"], float) == radius)  # the very bin it chose
    return float(profile["error"][hit[0]]) if len(hit) else float("nan")


def noise_reached(profile):
    """Whether the profile's signal-to-noise falls below 1 before its last bin.

    When it does not, :func:`dynamic_range` ends at the stamp's edge, not at the noise: the
    model's dynamic range is at least that.

    Parameters
    ----------
    profile : astropy.table.Table
        :func:`model_profile`'s table.

    Returns
    -------
    bool
        False also for a profile without a dynamic range (NaN).
    """
    _, radius = dynamic_range(profile)
    value = np.asarray(profile["value"], float)
    ok = np.flatnonzero(np.isfinite(value) & np.isfinite(np.asarray(profile["error"], float)))
    return bool(np.isfinite(radius) and float(profile["radius"][ok[-1]]) != radius)


def table_edges(profile):
    """The bin edges of a PROFILE table (``r_in`` and the last ``r_out``).

    Parameters
    ----------
    profile : astropy.table.Table
        :func:`model_profile`'s table.

    Returns
    -------
    numpy.ndarray
    """
    return np.append(np.asarray(profile["r_in"], float), float(profile["r_out"][-1]))


def on_grid(image, center, shape, grid_center):
    """*image* moved onto another grid so that its pixel *center* lands on *grid_center*.

    Used to put a reference PSF (e.g. the simulator's truth) on a model's stamp grid: pixels
    are cut off or padded with NaN, never resampled (both centres are whole pixels).

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    center : (int, int)
        ``(x, y)`` of the star's pixel in *image*.
    shape : (int, int)
        ``(ny, nx)`` of the grid.
    grid_center : (int, int)
        ``(x, y)`` of the star's pixel on the grid.

    Returns
    -------
    numpy.ndarray
        float64, *shape*; NaN where *image* does not reach.

    Examples
    --------
    >>> on_grid(np.arange(9.0).reshape(3, 3), (1, 1), (1, 3), (0, 0)).tolist()
    [[4.0, 5.0, nan]]
    """
    image = np.asarray(image, dtype=np.float64)
    out = np.full(shape, np.nan)
    dx, dy = int(grid_center[0]) - int(center[0]), int(grid_center[1]) - int(center[1])
    # the overlap, in the grid's pixels
    y0, y1 = max(0, dy), min(shape[0], image.shape[0] + dy)
    x0, x1 = max(0, dx), min(shape[1], image.shape[1] + dx)
    if y0 < y1 and x0 < x1:
        out[y0:y1, x0:x1] = image[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    return out


def normalized_like(reference, *, psfnorm, center, fluxrad=None, annulus_level=None, annulus_radii=None):
    """*reference* (e.g. the true PSF) scaled as the extended PSF file says its model is normalized.

    Parameters
    ----------
    reference : numpy.ndarray
        The reference PSF on the model's grid (:func:`on_grid`), any scale.
    psfnorm : {'flux', 'annulus'}
        The file's ``PSFNORM``.
    center : (int, int)
        ``(x, y)`` of the star's pixel.
    fluxrad : float, optional
        The file's ``FLUXRAD`` (pixels), for 'flux': the result has ``flux_within(result,
        fluxrad) == 1``.
    annulus_level : float, optional
        The model's annulus level, for 'annulus': the result's mean over the annulus
        (:func:`brightstamps.normalize.annulus_mask`, the normalization's pixels) equals it. A
        noiseless reference needs no clipping there.
    annulus_radii : (float, float), optional
        The annulus (the config's ``annular_flux_radii``), for 'annulus'.

    Returns
    -------
    numpy.ndarray
        float64.

    Raises
    ------
    brightstamps.errors.InputError
        For another *psfnorm*, a missing radius or level, or a reference with no flux there.
    """
    reference = np.asarray(reference, dtype=np.float64)
    if psfnorm == "flux":
        if fluxrad is None or not np.isfinite(fluxrad) or fluxrad <= 0:
            raise InputError(f"PSFNORM is 'flux' but FLUXRAD is {fluxrad!r}: the normalization is unknown")
        level, target = flux_within(reference, float(fluxrad), center=center), 1.0
        where = f"within r = {float(fluxrad):g} px"
    elif psfnorm == "annulus":
        if annulus_radii is None or annulus_level is None or not np.isfinite(annulus_level):
            raise InputError(
                f"PSFNORM is 'annulus' but the annulus {annulus_radii!r} or its level {annulus_level!r} "
                "is not known"
            )
        ring = annulus_mask(reference.shape, center, *annulus_radii)
        level, target = float(np.mean(reference[ring])), float(annulus_level)
        where = f"in the {annulus_radii[0]}-{annulus_radii[1]} px annulus"
    else:
        raise InputError(f"PSFNORM {psfnorm!r}: expected 'flux' or 'annulus'")
    if not (np.isfinite(level) and level > 0):
        raise InputError(
            f"the reference PSF has no positive flux {where} ({level!r}): it cannot be normalized"
        )
    return reference * (target / level)


def reference_profile(reference, profile, *, image, variance, n, center):
    """A reference PSF's profile on a model's bins and over exactly the pixels its profile used.

    So that the two can be compared bin by bin: ``(profile["value"] - result) / profile["error"]``.

    Parameters
    ----------
    reference : numpy.ndarray
        The reference on the model's grid, normalized as the model (:func:`normalized_like`).
    profile : astropy.table.Table
        The model's :func:`model_profile` table (its bins).
    image, variance, n : numpy.ndarray
        The model's planes (which pixels its profile used: :func:`model_pixels`).
    center : (int, int)
        ``(x, y)`` of the star's pixel.

    Returns
    -------
    numpy.ndarray
        One mean per bin; NaN where the model's bin has no pixel.
    """
    good = model_pixels(np.asarray(image, float), np.asarray(variance, float), n)
    return azimuthal_profile(reference, center=center, edges=table_edges(profile), good=good)


def compare_profiles(profile, reference_values, radius):
    """How a model's profile agrees with a reference's (e.g. the truth) out to *radius*.

    Parameters
    ----------
    profile : astropy.table.Table
        The model's :func:`model_profile` table.
    reference_values : numpy.ndarray
        The reference's mean in each bin (:func:`reference_profile`).
    radius : float
        Pixels, e.g. the dynamic-range radius: bins whose mean radius is larger are left out.

    Returns
    -------
    dict
        ``nbins`` (bins compared: finite value and reference, positive error), ``rms`` (root
        mean square of ``(value - reference) / error``) and ``median_fraction`` (median of
        ``|value / reference - 1|`` over those of them with a positive reference); NaN when
        there is none.
    """
    value = np.asarray(profile["value"], float)
    error = np.asarray(profile["error"], float)
    ref = np.asarray(reference_values, float)
    r = np.asarray(profile["radius"], float)
    ok = np.isfinite(value) & np.isfinite(ref) & np.isfinite(error) & (error > 0) & (r <= radius)
    rms = float(np.sqrt(np.mean(((value[ok] - ref[ok]) / error[ok]) ** 2))) if ok.any() else float("nan")
    pos = ok & (ref > 0)
    frac = float(np.median(np.abs(value[pos] / ref[pos] - 1))) if pos.any() else float("nan")
    return {"nbins": int(ok.sum()), "rms": rms, "median_fraction": frac}
