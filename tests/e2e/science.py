"""Measurements on stamps shared by the end-to-end tests: centroids, radial profiles, residuals."""

import numpy as np

from brightstamps.masks import plane_bits
from brightstamps.normalize import annular_flux, annulus_mask

BAD_PLANES = ["BAD", "CR", "CROSSTALK", "EDGE", "NO_DATA", "SAT", "SUSPECT", "UNMASKEDNAN"]


def usable(stamps, k):
    """Pixels of stamp k that are finite and carry none of the bad planes."""
    bad = plane_bits(stamps.mask_planes, BAD_PLANES, field="test")
    return np.isfinite(stamps.image[k]) & ((stamps.mask[k] & bad) == 0)


def centroid(image, center, *, sigma=2.0, radius=6, iterations=10):
    """Gaussian-weighted first moments about *center*, iterated (x, y)."""
    cx, cy = center
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for _ in range(iterations):
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        w = np.exp(-r2 / (2 * sigma**2)) * (r2 <= radius**2) * image
        cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
    return cx, cy


def truth_annular_flux(truth, inner, outer):
    """The truth stamp's annulus statistic, computed as for the data (noiseless: MEANCLIP = MEAN)."""
    ny, nx = truth.shape
    ann = annulus_mask(truth.shape, (nx // 2, ny // 2), inner, outer)
    flux, _ = annular_flux(
        truth,
        np.zeros(truth.shape, np.int32),
        ann,
        bad_bits=0,
        statistic="MEANCLIP",
        num_sigma_clip=4,
        num_iter=3,
    )
    return flux


def radial_profile(image, good, edges):
    """Mean of *image* over the *good* pixels in annuli (edges in px from the central pixel)."""
    ny, nx = image.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    r = np.hypot(xx - nx // 2, yy - ny // 2)
    out = np.full(len(edges) - 1, np.nan)
    for i in range(len(edges) - 1):
        sel = good & (r >= edges[i]) & (r < edges[i + 1])
        if sel.sum() >= 20:
            out[i] = image[sel].mean()
    return out


def radius_map(shape):
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return np.hypot(xx - nx // 2, yy - ny // 2)


def ring_angle_of_maximum(image, good, *, r_in, r_out, step_deg=5):
    """Focal-plane angle (deg, 0..180) where the mean over a ring peaks, folded by 180 deg."""
    ny, nx = image.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    dx, dy = xx - nx // 2, yy - ny // 2
    r = np.hypot(dx, dy)
    ang = np.degrees(np.arctan2(dy, dx)) % 180
    sel = good & (r >= r_in) & (r < r_out)
    bins = np.arange(0, 180 + step_deg, step_deg)
    means = []
    for a, b in zip(bins[:-1], bins[1:], strict=True):
        values = image[sel & (ang >= a) & (ang < b)]
        means.append(values.mean() if values.size >= 10 else np.nan)
    return bins[int(np.nanargmax(means))] + step_deg / 2
