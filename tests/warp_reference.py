"""The warp's exact-weight reference implementations, for the tests and `make bench`.

``warp_cutout_exact`` is the carefully vectorized numpy warp (exact sinc weights per pixel);
``warp_cutout_naive`` the plain numpy gather of all (2n)^2 taps at once. Neither is used by the
workflow: the compiled kernel in ``brightstamps._warp_kernel`` is, and it must match them.
"""

import numpy as np

from brightstamps.warp import KERNELS, kernel_weights


def warp_cutout_exact(
    image, mask, variance, *, center, affine, quadratic=None, out_shape, kernel, no_data_bit
):
    """Exact-weight, vectorized-numpy twin of :func:`brightstamps.warp.warp_cutout` (same arguments).

    The warp before the compiled kernel: sinc weights computed per pixel, planes gathered tap row by
    tap row. Kept as the reference the kernel must match to 1e-5 (the mask exactly).
    """
    n = KERNELS[kernel]
    h, w = image.shape
    out_h, out_w = out_shape
    jj, ii = np.mgrid[0:out_h, 0:out_w]
    dx = (ii - out_w // 2).ravel().astype(np.float64)
    dy = (jj - out_h // 2).ravel().astype(np.float64)
    ux = center[0] + affine[0, 0] * dx + affine[0, 1] * dy
    uy = center[1] + affine[1, 0] * dx + affine[1, 1] * dy
    if quadratic is not None:
        q = np.stack([dx * dx, dx * dy, dy * dy])
        ux += quadratic[0] @ q
        uy += quadratic[1] @ q
    ix = np.floor(ux).astype(np.int64)
    iy = np.floor(uy).astype(np.int64)
    inside = (ix >= n - 1) & (ix <= w - 1 - n) & (iy >= n - 1) & (iy <= h - 1 - n)
    out_img = np.full(out_h * out_w, np.nan, dtype=np.float64)
    out_var = np.full(out_h * out_w, np.inf, dtype=np.float64)
    out_msk = np.full(out_h * out_w, no_data_bit, dtype=np.int32)
    if inside.any():
        ix, iy = ix[inside], iy[inside]
        wx, _ = kernel_weights(ux[inside] - ix, kernel)
        wy, _ = kernel_weights(uy[inside] - iy, kernel)
        taps = np.arange(-(n - 1), n + 1)
        img_flat, var_flat = image.ravel().astype(np.float64), variance.ravel().astype(np.float64)
        msk_flat = mask.ravel()
        base = iy * w + ix
        wx_used = wx != 0  # afw ORs the masks of pixels with nonzero weight (bilinear can have 0)
        all_used = bool(wx_used.all())
        acc_img = np.zeros(base.size)
        acc_var = np.zeros(base.size)
        wx2 = wx * wx
        all_used = all_used and bool((wy != 0).all())
        if all_used:
            # every tap counts: the OR over the footprint is a box dilation of the cut-out's mask,
            # computed once instead of 4n^2 gathers per output pixel
            acc_msk = _box_or(mask, n).ravel()[base]
        else:
            acc_msk = np.zeros(base.size, dtype=np.int32)
        for t, ky in enumerate(taps):
            wyt = wy[:, t]
            if not np.any(wyt):
                continue
            idx = (base + ky * w)[:, None] + taps[None, :]
            vals, vvar = img_flat[idx], var_flat[idx]
            if all_used:
                acc_img += wyt * np.einsum("pk,pk->p", vals, wx)
                acc_var += wyt * wyt * np.einsum("pk,pk->p", vvar, wx2)
                continue
            vmsk = msk_flat[idx]
            vals, vvar, vmsk = (np.where(wx_used, a, 0) for a in (vals, vvar, vmsk))
            row_used = wyt != 0
            acc_img += np.where(row_used, wyt * np.einsum("pk,pk->p", vals, wx), 0.0)
            acc_var += np.where(row_used, wyt * wyt * np.einsum("pk,pk->p", vvar, wx2), 0.0)
            acc_msk |= np.where(row_used, np.bitwise_or.reduce(vmsk, axis=1), 0)
        rel_area = _rel_area(affine, quadratic, dx[inside], dy[inside])
        out_img[inside] = acc_img * rel_area  # weights are already normalized to unit sums
        out_var[inside] = acc_var * rel_area**2
        out_msk[inside] = acc_msk
    shape = (out_h, out_w)
    return (
        out_img.reshape(shape).astype(np.float32),
        out_msk.reshape(shape),
        out_var.reshape(shape).astype(np.float32),
    )


def _rel_area(affine, quadratic, dx, dy):
    """afw's relArea: |det| of the output-to-source map (flux conservation), per output pixel."""
    if quadratic is None:
        return abs(np.linalg.det(affine))
    (qx0, qx1, qx2), (qy0, qy1, qy2) = quadratic
    a11 = affine[0, 0] + 2 * qx0 * dx + qx1 * dy
    a12 = affine[0, 1] + qx1 * dx + 2 * qx2 * dy
    a21 = affine[1, 0] + 2 * qy0 * dx + qy1 * dy
    a22 = affine[1, 1] + qy1 * dx + 2 * qy2 * dy
    return np.abs(a11 * a22 - a12 * a21)


def warp_cutout_naive(image, variance, *, center, affine, out_shape, n=5):
    """Plain numpy Lanczos-n gather (image and variance, affine map): the naive reference."""
    h, w = image.shape
    out_h, out_w = out_shape
    jj, ii = np.mgrid[0:out_h, 0:out_w]
    d = np.stack([(ii - out_w // 2).ravel(), (jj - out_h // 2).ravel()]).astype(np.float64)
    ux, uy = np.asarray(center, float)[:, None] + affine @ d
    ix, iy = np.floor(ux).astype(int), np.floor(uy).astype(int)
    inside = (ix >= n - 1) & (ix <= w - 1 - n) & (iy >= n - 1) & (iy <= h - 1 - n)
    k = np.arange(-(n - 1), n + 1)
    x = k[None, :] - (ux - ix)[:, None]
    y = k[None, :] - (uy - iy)[:, None]
    wx = np.sinc(x) * np.sinc(x / n)
    wy = np.sinc(y) * np.sinc(y / n)
    wx /= wx.sum(axis=1, keepdims=True)
    wy /= wy.sum(axis=1, keepdims=True)
    rows = np.clip(iy[:, None, None] + k[None, :, None], 0, h - 1)
    cols = np.clip(ix[:, None, None] + k[None, None, :], 0, w - 1)
    weights = wy[:, :, None] * wx[:, None, :]
    rel = abs(np.linalg.det(affine))
    out_img = np.where(inside, (image[rows, cols] * weights).sum(axis=(1, 2)) * rel, np.nan)
    out_var = np.where(inside, (variance[rows, cols] * weights**2).sum(axis=(1, 2)) * rel**2, np.inf)
    return out_img.reshape(out_shape), out_var.reshape(out_shape)


def _box_or(mask, n):
    """OR of *mask* over the kernel footprint, offsets ``-(n-1) .. n`` on both axes, per pixel."""
    lo, hi = n - 1, n
    out = mask
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (lo, hi)
        padded = np.pad(out, pad)
        acc = np.zeros_like(mask)
        for k in range(lo + hi + 1):
            window = [slice(None), slice(None)]
            window[axis] = slice(k, k + mask.shape[axis])
            acc |= padded[tuple(window)]
        out = acc
    return out
