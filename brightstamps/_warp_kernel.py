"""Compiled resampling kernel of the warp (numba), used by :func:`brightstamps.warp.warp_cutout`.

Why it is fast, and still afw's warp:

- the 1-D Lanczos weights come from a table of normalized weights sampled every 1/4096 px and
  linearly interpolated (as SWarp does): no sin calls per pixel; interpolated rows still sum to
  one and differ from the exact weights by < 1e-7;
- output pixels are processed in runs along a row that read the same source row with the source
  column advancing by one pixel per output pixel (the usual case for a near-identity map), so
  every kernel tap reads a contiguous slice and the sums vectorize across output pixels; the
  order of the sums is the same for every pixel, in a run or not;
- the mask OR over the footprint is read from a dilation of the cut-out's mask computed once.

Compiled functions are cached on disk (``cache=True``), so only the first job on a machine
compiles. No fast-math: the arithmetic is IEEE and reruns give the same bytes.
"""

import math

import numpy as np
from numba import njit

#: Table steps per pixel of fractional offset.
TABLE_STEPS = 4096


def lanczos_table(n, steps=TABLE_STEPS):
    """Normalized Lanczos-n weights for fractional offsets ``0, 1/steps, ..., 1``, tap-major.

    Element ``[k, i]`` is the weight of source offset ``k - (n-1)`` for ``frac = i / steps``.
    """
    frac = np.arange(steps + 1) / steps
    k = np.arange(-(n - 1), n + 1, dtype=np.float64)
    x = k[None, :] - frac[:, None]
    w = np.sinc(x) * np.sinc(x / n)
    return np.ascontiguousarray((w / w.sum(axis=1, keepdims=True)).T)


@njit(cache=True, nogil=True)
def _map_row(dy, cx, cy, affine, quadratic, n, h, w, table, ixs, iys, ok, rel, wxs, wys, tx, ty, sx, sy):
    """Source pixels, inside flags, weights (tap-major) and flux factors of one output row.

    The source position of output pixel (i, j) is ``c + A d + Q (dx^2, dx dy, dy^2)`` with
    ``d = (i - W//2, j - H//2)``; the flux factor is |det| of the map's Jacobian there (afw's
    relArea). ``n == 1`` is bilinear, with exact weights. *table* is tap-major: (2n, steps + 1).
    First the positions of the whole row, then the weights tap by tap (loops that vectorize).
    """
    out_w = ok.shape[0]
    steps = table.shape[1] - 1
    scale = steps if n > 1 else 1
    a11, a12, a21, a22 = affine[0, 0], affine[0, 1], affine[1, 0], affine[1, 1]
    qx0, qx1, qx2 = quadratic[0, 0], quadratic[0, 1], quadratic[0, 2]
    qy0, qy1, qy2 = quadratic[1, 0], quadratic[1, 1], quadratic[1, 2]
    lo = float(n - 1)
    for i in range(out_w):  # branch-free, so that it vectorizes
        dx = float(i - out_w // 2)
        ux = cx + a11 * dx + a12 * dy + (qx0 * dx * dx + qx1 * dx * dy + qx2 * dy * dy)
        uy = cy + a21 * dx + a22 * dy + (qy0 * dx * dx + qy1 * dx * dy + qy2 * dy * dy)
        fx = math.floor(ux)
        fy = math.floor(uy)
        good = (fx >= lo) & (fx <= w - 1 - n) & (fy >= lo) & (fy <= h - 1 - n)  # False for NaN too
        ok[i] = good
        px = (ux - fx) * scale if good else 0.0
        py = (uy - fy) * scale if good else 0.0
        ixs[i] = int(fx) if good else 0
        iys[i] = int(fy) if good else 0
        tx[i] = min(int(px), steps - 1)
        ty[i] = min(int(py), steps - 1)
        sx[i] = px - tx[i]
        sy[i] = py - ty[i]
        j11 = a11 + 2 * qx0 * dx + qx1 * dy
        j12 = a12 + qx1 * dx + 2 * qx2 * dy
        j21 = a21 + 2 * qy0 * dx + qy1 * dy
        j22 = a22 + qy1 * dx + 2 * qy2 * dy
        rel[i] = abs(j11 * j22 - j12 * j21)
    if n == 1:
        for i in range(out_w):
            wxs[0, i] = 1.0 - sx[i]
            wxs[1, i] = sx[i]
            wys[0, i] = 1.0 - sy[i]
            wys[1, i] = sy[i]
        return
    for k in range(2 * n):
        row = table[k]
        for i in range(out_w):
            a = row[tx[i]]
            b = row[ty[i]]
            wxs[k, i] = a + sx[i] * (row[tx[i] + 1] - a)
            wys[k, i] = b + sy[i] * (row[ty[i] + 1] - b)


@njit(cache=True, nogil=True)
def _sum_run(image, variance, x0, y0, start, m, taps, wxs, wys, acc_i, acc_v, row_i, row_v):
    """Kernel sums of the *m* output pixels of a run into ``acc_i[:m]`` and ``acc_v[:m]``.

    Output pixel ``start + q`` reads source pixels ``(x0 + q + k, y0 + r)``: every tap is a
    contiguous slice, so the loops over q vectorize.
    """
    ai = acc_i[:m]
    av = acc_v[:m]
    ri = row_i[:m]
    rv = row_v[:m]
    ai[:] = 0.0
    av[:] = 0.0
    for r in range(taps):
        ri[:] = 0.0
        rv[:] = 0.0
        for k in range(taps):
            src_i = image[y0 + r, x0 + k : x0 + k + m]
            src_v = variance[y0 + r, x0 + k : x0 + k + m]
            wk = wxs[k, start : start + m]
            for q in range(m):
                ri[q] += wk[q] * src_i[q]
                rv[q] += wk[q] * wk[q] * src_v[q]
        wr = wys[r, start : start + m]
        for q in range(m):
            ai[q] += wr[q] * ri[q]
            av[q] += wr[q] * wr[q] * rv[q]


@njit(cache=True, nogil=True)
def warp_plane_set(
    image,
    variance,
    mask,
    dilated_mask,
    cx,
    cy,
    affine,
    quadratic,
    out_img,
    out_var,
    out_msk,
    n,
    table,
    no_data_bit,
):
    """Resample one cut-out (image, variance, mask) onto the output grid, in place.

    See :func:`brightstamps.warp.warp_cutout` for the map. ``n`` is the kernel half-width
    (1 = bilinear); *dilated_mask* is the mask OR-ed over the footprint (used for Lanczos, whose
    weights are never zero); bilinear ORs only the taps of nonzero weight, as afw does.
    """
    h, w = image.shape
    out_h, out_w = out_img.shape
    taps = 2 * n
    ixs = np.empty(out_w, np.int64)
    iys = np.empty(out_w, np.int64)
    ok = np.empty(out_w, np.bool_)
    rel = np.empty(out_w)
    wxs = np.empty((taps, out_w), np.float32)
    wys = np.empty((taps, out_w), np.float32)
    acc_i = np.empty(out_w, np.float32)
    acc_v = np.empty(out_w, np.float32)
    row_i = np.empty(out_w, np.float32)
    row_v = np.empty(out_w, np.float32)
    tx = np.empty(out_w, np.int64)
    ty = np.empty(out_w, np.int64)
    sx = np.empty(out_w)
    sy = np.empty(out_w)
    for j in range(out_h):
        _map_row(
            float(j - out_h // 2),
            cx,
            cy,
            affine,
            quadratic,
            n,
            h,
            w,
            table,
            ixs,
            iys,
            ok,
            rel,
            wxs,
            wys,
            tx,
            ty,
            sx,
            sy,
        )
        i = 0
        while i < out_w:
            if not ok[i]:
                out_img[j, i] = np.nan
                out_var[j, i] = np.inf
                out_msk[j, i] = no_data_bit
                i += 1
                continue
            if n == 1:
                # taps of zero weight (on a pixel boundary) neither count nor set mask bits
                s_i = 0.0
                s_v = 0.0
                bits = 0
                for r in range(2):
                    for k in range(2):
                        if wys[r, i] != 0.0 and wxs[k, i] != 0.0:
                            s_i += wys[r, i] * wxs[k, i] * image[iys[i] + r, ixs[i] + k]
                            s_v += (
                                wys[r, i]
                                * wys[r, i]
                                * (wxs[k, i] * wxs[k, i])
                                * variance[iys[i] + r, ixs[i] + k]
                            )
                            bits |= mask[iys[i] + r, ixs[i] + k]
                out_img[j, i] = s_i * rel[i]
                out_var[j, i] = s_v * rel[i] * rel[i]
                out_msk[j, i] = bits
                i += 1
                continue
            e = i + 1
            while e < out_w and ok[e] and iys[e] == iys[i] and ixs[e] == ixs[i] + (e - i):
                e += 1
            _sum_run(
                image,
                variance,
                ixs[i] - (n - 1),
                iys[i] - (n - 1),
                i,
                e - i,
                taps,
                wxs,
                wys,
                acc_i,
                acc_v,
                row_i,
                row_v,
            )
            for q in range(i, e):
                out_img[j, q] = acc_i[q - i] * rel[q]
                out_var[j, q] = acc_v[q - i] * rel[q] * rel[q]
                out_msk[j, q] = dilated_mask[iys[q], ixs[q]]
            i = e


@njit(cache=True, nogil=True)
def footprint_or(mask, n):
    """OR of *mask* over the Lanczos-n footprint, offsets ``-(n-1) .. n`` on both axes, per pixel.

    Pixels beyond the edge count as 0. Computed once per cut-out, it replaces (2n)^2 mask reads
    per output pixel.
    """
    h, w = mask.shape
    rows = np.zeros_like(mask)
    out = np.zeros_like(mask)
    for y in range(h):
        for k in range(-(n - 1), n + 1):  # offset by offset: loops over x that vectorize
            src = mask[y, max(0, k) : w + min(0, k)]
            dst = rows[y, max(0, -k) : w - max(0, k)]
            for x in range(dst.shape[0]):
                dst[x] |= src[x]
    for y in range(h):
        for k in range(max(0, y - (n - 1)), min(h - 1, y + n) + 1):
            for x in range(w):
                out[y, x] |= rows[k, x]
    return out
