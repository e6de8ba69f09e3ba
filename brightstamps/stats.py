"""Robust statistics shared by normalization, sky fitting and stacking, as afw computes them."""

import numpy as np

__all__ = ["STATISTICS", "IQR_TO_SIGMA", "clipped_statistic", "weighted_clipped_mean"]

#: Statistics understood by :func:`clipped_statistic` (afw names).
STATISTICS = ("MEAN", "MEDIAN", "MEANCLIP")

#: afw's factor turning an interquartile range into a Gaussian sigma.
IQR_TO_SIGMA = 0.741301109252802


def clipped_statistic(values, *, statistic, num_sigma_clip, num_iter, valid=None):
    """Reduce *values* along axis 0 with afw's MEAN, MEDIAN or MEANCLIP.

    MEANCLIP is afw's algorithm (``Statistics.cc``), not astropy's ``sigma_clipped_stats``:
    iteration 0 clips about the median with half-width ``num_sigma_clip * 0.7413 * IQR``
    (quartiles by linear interpolation); each later iteration clips about the previous clipped
    mean with half-width ``num_sigma_clip * sqrt(previous clipped variance)`` (ddof=1). Every
    iteration re-selects from all values, inclusively (``|v - centre| <= half-width``). A NaN
    centre or half-width gives NaN: in particular an iteration that leaves one survivor (whose
    ddof=1 variance is NaN) makes the next one NaN, since afw updates the half-width whenever there
    are at least two good values in all (write-up section 3.4.3, items 3 and 5).

    Parameters
    ----------
    values : numpy.ndarray
        Values, reduced along axis 0 (a 1-D array gives scalars; an ``(N, ny, nx)`` stack
        gives ``(ny, nx)`` maps).
    statistic : {'MEAN', 'MEDIAN', 'MEANCLIP'}
        Statistic to compute.
    num_sigma_clip : float
        Clip half-width in sigma (MEANCLIP only).
    num_iter : int
        Number of clip iterations (MEANCLIP only).
    valid : numpy.ndarray of bool, optional
        Which values may be used, same shape as *values*; non-finite values are never used.

    Returns
    -------
    value : numpy.ndarray or float
        The statistic; NaN where no value is usable.
    variance : numpy.ndarray or float
        ddof=1 variance of the values the statistic used (the clipped ones for MEANCLIP);
        NaN where fewer than two were used.
    n : numpy.ndarray or int
        Number of values the statistic used.

    Examples
    --------
    >>> import numpy as np
    >>> v = np.r_[np.arange(1, 21), 1000.0]
    >>> float(clipped_statistic(v, statistic="MEANCLIP", num_sigma_clip=4, num_iter=3)[0])
    10.5
    """
    if statistic not in STATISTICS:
        msg = f"statistic must be one of {STATISTICS}, got {statistic!r}"
        raise ValueError(msg)
    v = np.asarray(values, dtype=np.float64)
    good = np.isfinite(v)
    if valid is not None:
        good &= np.asarray(valid, dtype=bool)
    if statistic == "MEANCLIP":
        mean, var, n = _meanclip(v, good, num_sigma_clip, num_iter)
    else:
        mean, var, n = _moments(v, good)
        if statistic == "MEDIAN":
            with np.errstate(all="ignore"):
                mean = _nanquantiles(np.where(good, v, np.nan), (0.5,))[0]
    if np.ndim(mean) == 0:
        return float(mean), float(var), int(n)
    return mean, var, n


def _moments(v, sel):
    """Mean, ddof=1 variance and count of ``v[sel]`` along axis 0 (double precision)."""
    n = sel.sum(axis=0)
    x = np.where(sel, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x.sum(axis=0) / n
        dev = np.where(sel, v - mean, 0.0)
        var = (dev * dev).sum(axis=0) / (n - 1)
    mean = np.where(n > 0, mean, np.nan)
    var = np.where(n > 1, var, np.nan)
    return mean, var, n


def _nanquantiles(x, qs):
    """Quantiles along axis 0 by linear interpolation at q*(n-1), ignoring NaN.

    Vectorized (one sort; NaN sorts last), unlike ``np.nanquantile`` along an axis, which loops
    over the other axes in Python.
    """
    srt = np.sort(x, axis=0)
    n = np.sum(~np.isnan(x), axis=0)
    out = []
    for q in qs:
        pos = q * np.maximum(n - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        v_lo = np.take_along_axis(srt, lo[None], axis=0)[0] if srt.shape[0] else np.zeros(n.shape)
        v_hi = np.take_along_axis(srt, hi[None], axis=0)[0] if srt.shape[0] else np.zeros(n.shape)
        with np.errstate(invalid="ignore"):
            value = v_lo + (v_hi - v_lo) * frac
        out.append(np.where(n > 0, value, np.nan))
    return out


def _meanclip(v, good, nsig, niter):
    median, q1, q3 = _nanquantiles(np.where(good, v, np.nan), (0.5, 0.25, 0.75))
    centre = median
    half = nsig * IQR_TO_SIGMA * (q3 - q1)
    mean = np.full(np.shape(median), np.nan)
    var = np.full(np.shape(median), np.nan)
    n = np.zeros(np.shape(median), dtype=np.int64)
    # afw tests n > 1 on the number of good values, not on the previous clip's survivors: a clip
    # that leaves one value gives a NaN variance, hence a NaN half-width and a NaN result
    total = good.sum(axis=0)
    for it in range(niter):
        if it > 0:
            # afw: a negative variance is set to 0; with fewer than two good values the half-width
            # stays the IQR one
            half = np.where(total > 1, nsig * np.sqrt(np.maximum(var, 0.0)), half)
            centre = mean
        with np.errstate(invalid="ignore"):
            sel = good & (np.abs(v - centre) <= half)
        mean, var, n = _moments(v, sel)
        bad = ~(np.isfinite(centre) & np.isfinite(half))
        mean = np.where(bad, np.nan, mean)
    return mean, var, n


def weighted_clipped_mean(values, variances, *, num_sigma_clip, num_iter, valid=None, overwrite_input=False):
    """Inverse-variance weighted mean along axis 0, clipped on each value's leave-one-out residual.

    Each value ``s_i`` with variance ``v_i`` is compared with the weighted mean of the *other*
    selected values, ``m_-i``, whose variance is ``1 / W_-i``: it is kept while
    ``|s_i - m_-i| <= num_sigma_clip * sqrt(v_i + 1 / W_-i)``. Leaving the value out of its own
    reference is what lets the clip work when one value carries most of the weight (the brightest
    star in a stack's wings): a feature in that value alone (a galaxy, a ghost) is judged against
    the others, not against a mean it dominates. As afw's MEANCLIP, every iteration re-selects from
    all values, so a value clipped only because an outlier had pulled the first mean comes back. A
    value with nothing to compare against (the only one) is kept. The first iteration compares each
    value with the unweighted median instead, which no single value can pull (a bright outlier that
    carries most of the weight would pull every leave-one-out mean but its own). ``num_iter`` 0
    gives the plain weighted mean.

    Parameters
    ----------
    values, variances : numpy.ndarray
        Values and their variances, reduced along axis 0; a value with a non-finite or
        non-positive variance is not used.
    num_sigma_clip : float
        Clip half-width in units of the residual's standard deviation.
    num_iter : int
        Clip iterations (stops early when the selection no longer changes).
    valid : numpy.ndarray of bool, optional
        Which values may be used.
    overwrite_input : bool
        Let the function use float64 *values* and *variances* as its working arrays (a stack of
        many stamps need not be copied); they hold no meaning afterwards.

    Returns
    -------
    mean : numpy.ndarray or float
        ``sum(w s) / sum(w)`` over the kept values, ``w = 1 / v``; NaN where none is kept.
    variance : numpy.ndarray or float
        ``1 / sum(w)``: the variance of the mean when the variances are right; NaN where none.
    n : numpy.ndarray or int
        Number of values kept.
    weights : numpy.ndarray
        Each value's weight in the mean, ``1 / v`` if kept, else 0 (shape of *values*).

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([1.0, 1.1, 0.9, 30.0])
    >>> v = np.array([0.01, 0.01, 0.01, 1e-4])  # the outlier carries most of the weight
    >>> round(float(weighted_clipped_mean(s, v, num_sigma_clip=4, num_iter=3)[0]), 6)
    1.0
    """
    own = overwrite_input and all(
        isinstance(a, np.ndarray) and a.dtype == np.float64 for a in (values, variances)
    )
    s = values if own else np.array(values, dtype=np.float64)
    w = variances if own else np.array(variances, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        good = np.isfinite(s) & np.isfinite(w) & (w > 0)
        if valid is not None:
            good &= np.asarray(valid, dtype=bool)
        n_good = good.sum(axis=0)
        # the median's variance, (pi/2) <v> / n, needs the variances: taken before they become weights
        ref_var = np.pi / 2 * np.sum(w, axis=0, where=good) / np.maximum(n_good, 1) ** 2
        np.reciprocal(w, out=w)
        w[~good] = 0.0
        kept = good
        k2 = float(num_sigma_clip) ** 2
        for it in range(int(num_iter)):
            if it == 0:
                # a robust start: the unweighted median, its variance taken generously, so that no
                # value is clipped for the median's own noise
                s[~good] = np.nan
                ref = _nanquantiles(s, (0.5,))[0]
                s[~good] = 0.0
                z2 = s - ref
                z2 *= z2
                z2 *= w
                z2 /= 1.0 + w * ref_var
                new = good & ((z2 <= k2) | (n_good <= 1))
            else:
                wk = w * kept
                total_w = wk.sum(axis=0)
                mean = np.einsum("n...,n...->...", wk, s) / total_w
                del wk
                # against the others' weighted mean: for a kept value z**2 = w W (s - m)**2 / (W - w),
                # for a clipped one W + w
                denominator = np.where(kept, -w, w)
                denominator += total_w
                z2 = s - mean
                z2 *= z2
                z2 *= w
                z2 *= total_w
                z2 /= denominator
                # a value with nothing to compare against (the only one kept) is kept
                new = good & ((z2 <= k2) | (denominator <= 0))
                del denominator
            del z2
            if it > 0 and np.array_equal(new, kept):
                break
            kept = new
        if num_iter == 0:
            s[~good] = 0.0
        w[~kept] = 0.0
        total_w = w.sum(axis=0)
        n = kept.sum(axis=0)
        mean = np.where(total_w > 0, np.einsum("n...,n...->...", w, s) / total_w, np.nan)
        variance = np.where(total_w > 0, 1.0 / total_w, np.nan)
    if np.ndim(mean) == 0:
        return float(mean), float(variance), int(n), w
    return mean, variance, n, w
