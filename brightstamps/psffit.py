"""PSF fits of the extended PSF: every star as an amplitude times the model plus a local background.

The extended PSF and the stars' amplitudes are one least-squares problem: star ``i``'s stamp is
``x_i = a_i M + b_i`` plus noise, with ``M`` the model, ``a_i`` its amplitude and ``b_i`` a
polynomial background. :func:`fit_stars` solves it for the amplitudes and backgrounds given ``M``;
the stack (:func:`brightstamps.stack.stack_sources`) solves it for ``M`` given them; the two
alternate. Alternating alone converges very slowly along one direction: unsaturated stars see the
core, saturated stars only the wings, and the ratio of the two is tied only by the few pixels
where both have signal (a wrong core-to-wing ratio is almost a fixed point). So every fit also
solves for a core-to-wing tie, the model rescaled by ``1 + t`` beyond the core's half width
(piecewise linear in radius between knots at 0, 1, 2, 4, 8, ... pixels, :func:`tie_knot`), jointly
over all stars (variable projection: the amplitudes and backgrounds are eliminated exactly, ``t``
found by a one-dimensional optimization). At the solution ``t = 0``; before it, the amplitudes
come out on one scale for all stars in one step.

Backgrounds are fitted with the amplitude over all of a star's unmasked pixels (not on the
pixels beyond the star first, as LSST's ExtendedPsfStackTask does: the wings are there, and a
background fitted on them takes their light). A flat or tilted component of the model itself is
exactly degenerate with the stars' backgrounds (``a_i (M + e) + (b_i - a_i e)`` fits as well),
so iterating can drift; the backgrounds are pinned by their definition, the light that does not
scale with the star: the part of each background term proportional to the amplitude
(:func:`pin_backgrounds`) is moved into the model.
"""

import numpy as np
from astropy.table import Table
from scipy import ndimage
from scipy.optimize import minimize_scalar

from .masks import plane_bits
from .profile import azimuthal_profile, profile_edges

__all__ = [
    "background_names",
    "background_basis",
    "exposure_units",
    "radial_knots",
    "radial_hats",
    "tie_knot",
    "fit_model",
    "normal_equations",
    "feature_exclusions",
    "fit_stars",
    "pin_backgrounds",
]

#: Feature exclusions stay out of the core: where the model is above this fraction of its peak.
_CORE_LEVEL = 1e-3

#: Stars whose amplitude has a lower signal-to-noise do not set the core-to-wing tie: their wings
#: are far below their noise, where a neighbour's light (a plane cannot take a halo) outweighs
#: their own.
_TIE_MIN_SNR = 200.0

#: Stamps read at a time by the fits.
_BLOCK = 32


def background_names(order):
    """Names of the background terms up to *order*: ``bkg_x0y0``, ``bkg_x1y0``, ``bkg_x0y1``, ..."""
    return [f"bkg_x{total - py}y{py}" for total in range(order + 1) for py in range(total + 1)]


def background_basis(shape, order):
    """The polynomial background terms over a stamp, x and y scaled to [-1, 1] about the centre.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``.
    order : int
        Polynomial order; -1 for none.

    Returns
    -------
    numpy.ndarray
        ``(len(background_names(order)), ny, nx)``, in :func:`background_names`' order.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    x = (xx - nx // 2) / (nx / 2)
    y = (yy - ny // 2) / (ny / 2)
    terms = [x ** (total - py) * y**py for total in range(order + 1) for py in range(total + 1)]
    return np.asarray(terms, dtype=np.float64).reshape(-1, ny, nx)


def exposure_units(src, rows):
    """Factors that put the stored image and variance planes of *rows* back in exposure units.

    Step 5 divided each image by its annular flux ``F`` (where measured) and, with
    ``normalize_variance`` (``VARNORM``), the variance by ``F**2``.

    Parameters
    ----------
    src : brightstamps.stampsfile.StampsFile
    rows : numpy.ndarray of int

    Returns
    -------
    image_scale, variance_scale : numpy.ndarray
        ``image * image_scale`` and ``variance * variance_scale`` are in exposure units.
    """
    flux = np.asarray(src.stars["annular_flux"], float)[np.asarray(rows, dtype=np.int64)]
    image_scale = np.where(np.isfinite(flux), flux, 1.0)
    variance_scale = image_scale**2 if src.header.get("VARNORM", False) else np.ones_like(image_scale)
    return image_scale, variance_scale


def radial_knots(shape, center):
    """Knots of the radial rescaling ``g(r)``: 0, 1, 2, 4, 8, ... pixels, the last beyond the corners."""
    ny, nx = shape
    corner = max(np.hypot(max(center[0], nx - 1 - center[0]), max(center[1], ny - 1 - center[1])), 1.0)
    knots = [0.0, 1.0]
    while knots[-1] < corner:
        knots.append(2 * knots[-1])
    return np.asarray(knots)


def radial_hats(r, knots):
    """Piecewise-linear hat functions of radius on *knots* (they sum to 1 everywhere)."""
    out = np.zeros((len(knots), *r.shape))
    for k, knot in enumerate(knots):
        left = knots[k - 1] if k else None
        right = knots[k + 1] if k + 1 < len(knots) else None
        up = np.ones_like(r) if left is None else np.clip((r - left) / (knot - left), 0, None)
        down = np.ones_like(r) if right is None else np.clip((right - r) / (right - knot), 0, None)
        out[k] = np.where(r <= knot, np.minimum(up, 1.0), np.minimum(down, 1.0))
        if left is not None:
            out[k][r < left] = 0.0
        if right is not None:
            out[k][r > right] = 0.0
    return out


def tie_knot(model, center, knots):
    """The knot where the core-to-wing tie starts: the one nearest the core's half width at half maximum.

    The tie rescales the model beyond this knot (rising to the full scale at the next one): one
    scale between the core, inside the half width, and everything outside. The unsaturated stars
    measure it where they have the most signal on both sides. Placed further out, at the edge of
    the saturated stars' masks (4-8 px on the demo), it was set by where each star's stamp
    departs most from the mean model (its sub-pixel centre and the warp's interpolation move a
    steep profile by +-2 % per ring there), which carried a 1.2 % error into the whole wing.

    Parameters
    ----------
    model : numpy.ndarray
        The model (NaN where it has no data).
    center : (int, int)
        ``(x, y)`` of the star's pixel.
    knots : numpy.ndarray
        :func:`radial_knots`.

    Returns
    -------
    int or None
        Index into *knots* (at least 1); None if the model has no core.
    """
    peak = float(model[center[1], center[0]])
    if not (np.isfinite(peak) and peak > 0):
        return None
    edges = profile_edges(float(knots[-1]))
    profile = azimuthal_profile(model, center=center, edges=edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    below = np.flatnonzero(np.isfinite(profile) & (profile < 0.5 * peak))
    if not len(below) or below[0] == 0:
        return 1
    i = below[0]
    # linear between the last bin above half the peak and the first below
    hwhm = np.interp(0.5 * peak, [profile[i], profile[i - 1]], [mid[i], mid[i - 1]])
    return 1 + int(np.argmin(np.abs(np.log2(knots[1:]) - np.log2(max(hwhm, 1.0)))))


def fit_model(model, variance, *, min_model_snr, center):
    """The model as the fits use it: where its own S/N is low, its azimuthal mean at that radius.

    A stack's outskirts are noise pixel by pixel; fitting a star against that noise would let the
    noise steer its amplitude and background. The azimuthal mean (inverse-variance weighted, so
    that a few noisy pixels at the stamp's corners do not set it) keeps the wings' level there; a
    radius where even that mean is not measured (S/N below 2) gets 0.

    Parameters
    ----------
    model, variance : numpy.ndarray
        The current model and its variance (NaN where it has no data).
    min_model_snr : float
        Pixels with ``model / sqrt(variance)`` below this take the azimuthal mean.
    center : (int, int)
        ``(x, y)`` of the star's pixel.

    Returns
    -------
    numpy.ndarray
        Finite everywhere.
    """
    model = np.asarray(model, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    known = np.isfinite(model) & np.isfinite(variance) & (variance > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        strong = known & (model > min_model_snr * np.sqrt(np.where(known, variance, np.inf)))
        w = np.where(known, 1.0 / np.where(known, variance, 1.0), 0.0)
    yy, xx = np.indices(model.shape)
    r = np.hypot(xx - center[0], yy - center[1])
    edges = profile_edges(float(r.max()) + 1.0)
    which = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, len(edges) - 2)
    nbins = len(edges) - 1
    # the mean of the pixels it replaces: a ring's strong pixels (a spike) are not spread over the rest
    w = np.where(strong, 0.0, w)
    sum_w = np.bincount(which.ravel(), weights=w.ravel(), minlength=nbins)
    sum_wm = np.bincount(which.ravel(), weights=(w * np.where(known, model, 0.0)).ravel(), minlength=nbins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum_wm / sum_w
        snr = mean * np.sqrt(sum_w)
    measured = np.isfinite(mean) & (snr >= 2)
    mid = 0.5 * (edges[:-1] + edges[1:])
    fill = np.interp(r, mid[measured], mean[measured], right=0.0) if measured.any() else np.zeros_like(r)
    return np.where(strong, model, fill)


def normal_equations(src, rows, columns, *, bad_mask_planes):
    """The weighted normal equations of each star against *columns*, reading the stamps a block at a time.

    Parameters
    ----------
    src : brightstamps.stampsfile.StampsFile
    rows : numpy.ndarray of int
        Stars of *src* to fit.
    columns : numpy.ndarray
        ``(P, ny, nx)`` fit columns (finite), in exposure units per unit amplitude.
    bad_mask_planes : list of str
        A star's pixels with any of these planes (or non-finite, or without a positive variance)
        are left out.

    Returns
    -------
    gram : numpy.ndarray
        ``(n, P, P)``: ``sum w c_j c_k`` over the star's pixels, ``w = 1 / variance``.
    rhs : numpy.ndarray
        ``(n, P)``: ``sum w x c_j``.
    data2 : numpy.ndarray
        ``(n,)``: ``sum w x**2``.
    npix : numpy.ndarray of int
        Pixels used.
    used_weight : numpy.ndarray
        ``(n, P)``: ``sum |c_j|`` over the used pixels (for the masked-flux fraction).
    """
    rows = np.asarray(rows, dtype=np.int64)
    n, p = len(rows), len(columns)
    gram = np.zeros((n, p, p))
    rhs = np.zeros((n, p))
    data2 = np.zeros(n)
    npix = np.zeros(n, dtype=np.int64)
    used = np.zeros((n, p))
    if not n:
        return gram, rhs, data2, npix, used
    bad = plane_bits(src.mask_planes, bad_mask_planes, field="stack.bad_mask_planes")
    image_scale, variance_scale = exposure_units(src, rows)
    flat = np.ascontiguousarray(columns.reshape(p, -1), dtype=np.float64)
    magnitude = np.abs(flat)
    # the products of every pair of columns, once: a block's Gram matrices are then one matrix
    # product with the block's weights
    iu = np.triu_indices(p)
    pairs = flat[iu[0]] * flat[iu[1]]
    for start in range(0, n, _BLOCK):
        block = slice(start, min(start + _BLOCK, n))
        img, msk, var = src.read(rows[block])
        nb = len(img)
        x = img.reshape(nb, -1).astype(np.float64) * image_scale[block, None]
        v = var.reshape(nb, -1).astype(np.float64) * variance_scale[block, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            good = np.isfinite(x) & np.isfinite(v) & (v > 0) & ((msk.reshape(nb, -1) & bad) == 0)
            w = np.where(good, 1.0 / np.where(good, v, 1.0), 0.0)
        x = np.where(good, x, 0.0)
        xw = x * w
        upper = w @ pairs.T
        gram[block][:, iu[0], iu[1]] = upper
        gram[block][:, iu[1], iu[0]] = upper
        rhs[block] = xw @ flat.T
        data2[block] = np.einsum("bn,bn->b", xw, x)
        npix[block] = good.sum(axis=1)
        used[block] = good.astype(np.float64) @ magnitude.T
    return gram, rhs, data2, npix, used


def feature_exclusions(
    src, rows, *, amplitude, background, basis, model, model_variance, bad_mask_planes, num_sigma, smoothing
):
    """Pixels of each star that hold light of its own: a galaxy, a ghost, a trail the masks missed.

    Each star's normalized stamp is compared with the model of the *other* stars (the model less
    the star's own share of its weight, ``share = w_i / sum(w)`` with ``w_i = a_i**2 / v``), in
    units of the difference's error, less its mean in each 1 px ring (a radial mismatch is the
    fits' business, not a feature); the significance map is smoothed with a Gaussian of
    *smoothing* pixels and renormalized to unit noise, so an extended feature too faint per pixel
    to be clipped (or DETECTED) still stands out. Pixels beyond *num_sigma*, grown by twice the
    smoothing, are returned.

    Parameters
    ----------
    src : brightstamps.stampsfile.StampsFile
    rows : numpy.ndarray of int
    amplitude : numpy.ndarray
        Per star (model units); stars with a non-positive or NaN amplitude get no exclusion.
    background : numpy.ndarray or None
        ``(n, T)`` background terms (exposure units) on *basis*.
    basis : numpy.ndarray
        ``(T, ny, nx)``.
    model, model_variance : numpy.ndarray
        The current model (normalized) and its variance.
    bad_mask_planes : list of str
    num_sigma : float
    smoothing : float
        Gaussian sigma (pixels).

    Returns
    -------
    list of numpy.ndarray
        Per star, flat indices of the excluded pixels.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = [np.zeros(0, np.int64) for _ in rows]
    if not len(rows):
        return out
    bad = plane_bits(src.mask_planes, bad_mask_planes, field="stack.bad_mask_planes")
    image_scale, variance_scale = exposure_units(src, rows)
    known = np.isfinite(model) & np.isfinite(model_variance) & (model_variance > 0)
    core = np.where(known, model, 0.0) > _CORE_LEVEL * np.max(np.where(known, model, 0.0), initial=0.0)
    m = np.where(known, model, 0.0)
    mv = np.where(known, model_variance, np.inf)
    grow = ndimage.generate_binary_structure(2, 1)
    yy, xx = np.indices(model.shape)
    cy, cx = int(src.header["CENTERY"]), int(src.header["CENTERX"])
    rings = np.rint(np.hypot(xx - cx, yy - cy)).astype(np.int64).ravel()
    n_rings = int(rings.max()) + 1
    for start in range(0, len(rows), _BLOCK):
        block = slice(start, min(start + _BLOCK, len(rows)))
        img, msk, var = src.read(rows[block])
        for k, i in enumerate(range(block.start, block.stop)):
            a = amplitude[i]
            if not (np.isfinite(a) and a > 0):
                continue
            x = img[k].astype(np.float64) * image_scale[i]
            if background is not None and background.shape[1]:
                x = x - np.tensordot(background[i], basis, axes=1)
            v = var[k].astype(np.float64) * variance_scale[i]
            with np.errstate(invalid="ignore", divide="ignore"):
                good = known & np.isfinite(x) & np.isfinite(v) & (v > 0) & ((msk[k] & bad) == 0)
                s_var = np.where(good, v / a**2, np.inf)
                share = np.where(good, np.minimum(mv / s_var, 0.99), 0.0)
                z = np.where(good, (x / a - m) / (1 - share) / np.sqrt(s_var + mv / (1 - share)), 0.0)
            z = np.where(np.isfinite(z) & good, z, 0.0)
            # a localized feature, not a radial mismatch: each ring's mean residual (a wrong
            # amplitude or core-to-wing tie, which the fits handle) is taken out first
            ring_sum = np.bincount(rings, weights=z.ravel(), minlength=n_rings)
            ring_n = np.bincount(rings, weights=good.ravel(), minlength=n_rings)
            z = np.where(good, z - (ring_sum / np.maximum(ring_n, 1))[rings].reshape(z.shape), 0.0)
            # smoothed significance in units of its own noise (unit-variance z on good pixels)
            smooth = ndimage.gaussian_filter(z, smoothing, mode="constant")
            norm = ndimage.gaussian_filter(good.astype(np.float64), smoothing / np.sqrt(2), mode="constant")
            norm /= 4 * np.pi * smoothing**2
            with np.errstate(invalid="ignore", divide="ignore"):
                sig = np.where(norm > 0, smooth / np.sqrt(norm), 0.0)
            # light of its own (a deficit is another star's feature), away from the core: there
            # each star's resampling leaves its own pattern at 1e-4 of the peak, well above its
            # noise, and a clip of its positive half alone would bias the model low
            flagged = (sig > num_sigma) & ~core
            if flagged.any():
                flagged = ndimage.binary_dilation(flagged, grow, iterations=int(np.ceil(2 * smoothing)))
                out[i] = np.flatnonzero(flagged & good)
    return out


def _eliminate(gram, rhs, data2, nk):
    """Eliminate the background terms (the columns after the first *nk*) from each star's equations."""
    gmm, gmb, gbb = gram[:, :nk, :nk], gram[:, :nk, nk:], gram[:, nk:, nk:]
    hm, hb = rhs[:, :nk], rhs[:, nk:]
    if gbb.shape[1] == 0:
        return gmm, hm, data2
    # Jacobi scaling keeps the solve well conditioned whatever the units of the terms
    d = np.sqrt(np.maximum(np.einsum("nii->ni", gbb), 1e-300))
    gbb_s = gbb / d[:, :, None] / d[:, None, :]
    gbb_inv = np.linalg.pinv(gbb_s, hermitian=True) / d[:, :, None] / d[:, None, :]
    proj = gmb @ gbb_inv  # (n, nk, T)
    g_eff = gmm - proj @ np.transpose(gmb, (0, 2, 1))
    h_eff = hm - np.einsum("nkt,nt->nk", proj, hb)
    q_eff = data2 - np.einsum("nt,nts,ns->n", hb, gbb_inv, hb)
    return g_eff, h_eff, q_eff


def _radial_scale(g_eff, h_eff, ok, direction):
    """The core-to-wing tie ``c = 1 + t * direction`` maximizing ``sum_i (c.h_i)**2 / (c G_i c)``.

    That sum is the chi-square the amplitudes remove over the stars *ok*. One parameter only:
    the slow direction of the alternating fits is one scale between the stars that see the core
    and those that see only the wings; more freedom (a scale per knot) lets the noise of the
    model's outskirts steer the wings.
    """
    nk = g_eff.shape[1]
    if not ok.any() or not np.any(direction):
        return np.ones(nk)
    g, h = g_eff[ok], h_eff[ok]

    def removed(t):
        c = 1.0 + t * direction
        ch = h @ c
        cgc = np.einsum("k,nkl,l->n", c, g, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            return -float(np.sum(np.where(cgc > 0, ch**2 / cgc, 0.0)))

    res = minimize_scalar(removed, bounds=(-0.5, 1.0), method="bounded", options={"xatol": 1e-7})
    return 1.0 + res.x * direction


def fit_stars(gram, rhs, data2, npix, used, total, *, nk, ok, saturated=None, start=None):
    """Amplitudes, backgrounds and their errors of every star, with the joint core-to-wing tie.

    Parameters
    ----------
    gram, rhs, data2, npix, used
        From :func:`normal_equations` (columns: *nk* model columns, one per radial knot, then the
        background terms).
    total : numpy.ndarray
        ``(P,)``: ``sum |c_j|`` over the whole stamp (the masked-flux fraction's denominator).
    nk : int
        Number of model columns.
    ok : numpy.ndarray of bool
        Stars allowed to set the tie (the others are fitted with it).
    saturated : numpy.ndarray of bool, optional
        Stars that do not see the core. With them and stars that do, the model is rescaled by
        ``1 + t s(r)``, ``s`` 0 up to knot *start* and 1 from the next knot on (:func:`tie_knot`),
        with ``t`` the one value that fits all stars best; None (or no star on either side, or
        *start* None) holds the model as it is.
    start : int, optional
        Index of the knot where the tie starts.

    Returns
    -------
    dict
        ``scale`` (the knots' values ``c``), and per star ``amplitude``, ``amplitude_var``,
        ``background`` ``(n, T)``, ``background_var`` ``(n, T)``, ``chi2``, ``dof``,
        ``masked_flux_fraction``.
    """
    n, p = rhs.shape
    nt = p - nk
    g_eff, h_eff, q_eff = _eliminate(gram, rhs, data2, nk)
    # each star's amplitude and its S/N against the model as it is (c = 1)
    h1, g1 = np.einsum("nk->n", h_eff), np.einsum("nkl->n", g_eff)
    direction = np.zeros(nk)
    if saturated is not None and start is not None:
        sat = ok & np.asarray(saturated, bool)
        if sat.any() and (ok & ~sat).any():
            direction[start + 1 :] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        snr1 = np.nan_to_num(h1 / np.sqrt(g1))
    c = _radial_scale(g_eff, h_eff, ok & (snr1 >= _TIE_MIN_SNR), direction)
    with np.errstate(invalid="ignore", divide="ignore"):
        cgc = np.einsum("k,nkl,l->n", c, g_eff, c)
        ch = h_eff @ c
        amplitude = np.where(cgc > 0, ch / cgc, np.nan)
        amplitude_var = np.where(cgc > 0, 1.0 / cgc, np.nan)
        chi2 = q_eff - ch**2 / cgc
        total_model = np.abs(c) @ np.abs(total[:nk]) if nk else 0.0
        masked = 1.0 - (used[:, :nk] @ np.abs(c)) / total_model
    background = np.full((n, nt), np.nan)
    background_var = np.full((n, nt), np.nan)
    for i in range(n):
        if not np.isfinite(amplitude[i]) or nt == 0:
            continue
        # the (amplitude, background) system of this star for the rescaled model column
        u = np.concatenate([[c @ gram[i, :nk, :nk] @ c], c @ gram[i, :nk, nk:]])
        normal = np.zeros((1 + nt, 1 + nt))
        normal[0] = u
        normal[:, 0] = u
        normal[1:, 1:] = gram[i, nk:, nk:]
        d = np.sqrt(np.maximum(np.diag(normal), 1e-300))
        cov = np.linalg.pinv(normal / d[:, None] / d[None, :], hermitian=True) / d[:, None] / d[None, :]
        theta = cov @ np.concatenate([[c @ rhs[i, :nk]], rhs[i, nk:]])
        background[i] = theta[1:]
        background_var[i] = np.diag(cov)[1:]
    dof = npix - (1 + nt)
    return {
        "scale": c,
        "amplitude": amplitude,
        "amplitude_var": amplitude_var,
        "background": background,
        "background_var": background_var,
        "chi2": chi2,
        "dof": dof,
        "masked_flux_fraction": masked,
    }


def pin_backgrounds(amplitude, background, background_var, ok):
    """Remove from each background term the part proportional to the star's amplitude.

    A background is the light that does not scale with the star. Fitted against a model with a
    pedestal (or a tilt) ``e``, star ``i``'s background term comes out as ``b_i - a_i e``: the
    slope of the terms against the amplitudes measures ``-e``. For each term, a weighted straight
    line ``b = alpha + slope * a`` through the stars *ok* (weights ``1 / (var + tau**2)``, with
    ``tau**2`` the scatter of the true backgrounds beyond their errors, estimated by moments,
    and 5-sigma outliers left out), then ``b - slope * a``.

    Parameters
    ----------
    amplitude : numpy.ndarray
        ``(n,)``.
    background, background_var : numpy.ndarray
        ``(n, T)`` terms and their variances.
    ok : numpy.ndarray of bool
        Stars that define the line (finite, fitted).

    Returns
    -------
    background : numpy.ndarray
        ``(n, T)`` pinned terms.
    slope : numpy.ndarray
        ``(T,)``: what was moved into the model, per unit amplitude (0 with fewer than 3 stars).
    """
    background = np.array(background, dtype=np.float64)
    slope = np.zeros(background.shape[1])
    a = np.asarray(amplitude, float)
    for t in range(background.shape[1]):
        b, var = background[:, t], background_var[:, t]
        use = ok & np.isfinite(b) & np.isfinite(var) & (var > 0) & np.isfinite(a)
        if use.sum() < 3 or np.ptp(a[use]) == 0:
            continue
        tau2 = 0.0
        for _ in range(10):
            w = 1.0 / (var[use] + tau2)
            design = np.column_stack([np.ones(use.sum()), a[use]]) * np.sqrt(w)[:, None]
            coef, *_ = np.linalg.lstsq(design, b[use] * np.sqrt(w), rcond=None)
            resid = b - coef[0] - coef[1] * a
            # DerSimonian-Laird: the true backgrounds scatter beyond their errors (sky residuals)
            wu = 1.0 / var[use]
            denom = float(np.sum(wu) - np.sum(wu**2) / np.sum(wu))
            q = float(np.sum(wu * resid[use] ** 2))
            new_tau2 = max(0.0, (q - (use.sum() - 2)) / denom) if denom > 0 else 0.0
            outlier = use & (np.abs(resid) > 5 * np.sqrt(var + new_tau2))
            if not outlier.any() and abs(new_tau2 - tau2) <= 1e-3 * max(new_tau2, 1e-300):
                break
            tau2 = new_tau2
            if (use & ~outlier).sum() < 3:
                break
            use = use & ~outlier
        slope[t] = coef[1]
        background[:, t] = b - coef[1] * a
    return background, slope


def fit_table(results, names, ok, status):
    """The per-star fit results as a table (one row per fitted star), background terms named."""
    t = Table()
    t["amplitude"] = results["amplitude"]
    t["amplitude_err"] = np.sqrt(results["amplitude_var"])
    for k, name in enumerate(names):
        t[name] = results["background"][:, k]
    with np.errstate(invalid="ignore", divide="ignore"):
        t["reduced_chi2"] = np.where(results["dof"] > 0, results["chi2"] / results["dof"], np.nan)
    t["dof"] = results["dof"].astype(np.int64)
    t["masked_flux_fraction"] = results["masked_flux_fraction"]
    t["fit_ok"] = np.asarray(ok, bool)
    t["stack_status"] = np.asarray(status, dtype=str)
    return t
