"""Science on the simulated demo: the stamps reproduce the known PSF, centroids and noise."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from science import centroid, radial_profile, radius_map, ring_angle_of_maximum, truth_annular_flux, usable

from brightstamps.normalize import annulus_mask
from brightstamps.stampsfile import read_stamps

EXPOSURES = [f"demo_det{d}" for d in range(4)]


@pytest.fixture(scope="module")
def demo(demo_run):
    truth_psf = fits.getdata(demo_run / "resources" / "demo" / "truth.fits", "PSF")
    truth = Table.read(demo_run / "resources" / "demo" / "truth.fits", "STARS")
    stamps = {e: read_stamps(demo_run / "results" / e / "bright_star_stamps.fits") for e in EXPOSURES}
    return truth_psf, truth, stamps


def _truth_row(truth, exposure, gaia_id):
    return truth[(truth["exposure"] == exposure) & (truth["source_id"] == gaia_id)][0]


def _near_saturated_star(truth, exposure, gaia_id, distance):
    """Whether another saturated star of *exposure* lies within *distance* px of star *gaia_id*."""
    star = _truth_row(truth, exposure, gaia_id)
    other = truth[(truth["exposure"] == exposure) & truth["saturated"] & (truth["source_id"] != gaia_id)]
    return bool(
        np.any(np.hypot(other["x_true"] - star["x_true"], other["y_true"] - star["y_true"]) < distance)
    )


def _annulus_error(s, k):
    """Relative error of the annular flux from the propagated (normalized) variance."""
    ann = annulus_mask(s.stamp_shape, (137, 137), 70, 80) & usable(s, k)
    return np.sqrt(np.mean(s.variance[k][ann]) / ann.sum())


def test_every_bright_star_is_found(demo):
    _, truth, stamps = demo
    for e in EXPOSURES:
        expected = truth[
            (truth["exposure"] == e) & (truth["g_mag"] < 18) & np.isfinite(truth["catalog_g_mag"])
        ]
        assert sorted(stamps[e].stars["gaia_id"]) == sorted(expected["source_id"])


def test_unsaturated_star_centroids_on_the_central_pixel(demo):
    psf, truth, stamps = demo
    ref = centroid(psf, (137, 137))  # the PSF's own (slightly asymmetric) centroid
    window = radius_map(psf.shape) <= 6  # the centroid's
    g_mag, dx, dy = [], [], []
    masked = 0
    for e in EXPOSURES:
        s = stamps[e]
        for k in range(len(s)):
            if _truth_row(truth, e, s.stars["gaia_id"][k])["saturated"]:
                continue
            good = usable(s, k)
            if not good[window].all():
                masked += 1  # a bad column (grown by the warp) or the edge in the window: a biased centroid
                continue
            c = centroid(np.where(good, s.image[k], 0.0), (137, 137))
            g_mag.append(s.stars["g_mag"][k])
            dx.append(c[0] - ref[0])
            dy.append(c[1] - ref[1])
    # two per detector (one with a 500 mas/yr proper motion) and the 157 unsaturated field stars
    assert len(g_mag) + masked == 164 and masked == 3
    g_mag, dx, dy = np.array(g_mag), np.array(dx), np.array(dy)
    offsets = np.hypot(dx, dy)
    bright = g_mag < 14  # the noise moves their centroids by < 0.005 px
    assert bright.sum() == 19 and offsets[bright].max() <= 0.02
    # the faint ones scatter with their noise (about 0.06-0.08 px per axis at G = 17.5) about the
    # central pixel: none beyond 0.35 px (over 4 sigma radially for all 160)
    assert offsets.max() <= 0.35
    assert abs(dx.mean()) <= 0.01 and abs(dy.mean()) <= 0.01  # 4 standard errors


def test_normalized_profiles_equal_the_truth(demo):
    psf, truth, stamps = demo
    norm = truth_annular_flux(psf, 70, 80)
    edges = np.arange(10, 81, 5)
    ratios = []
    for e in EXPOSURES:
        s = stamps[e]
        for k in range(len(s)):
            if s.stars["norm_status"][k] != "ok" or _annulus_error(s, k) > 0.02:
                continue  # faint stars: the annulus is noise-dominated
            good = usable(s, k)
            ratios.append(radial_profile(s.image[k], good, edges) / radial_profile(psf / norm, good, edges))
    ratios = np.array(ratios)
    assert len(ratios) >= 12
    per_bin = np.nanmedian(ratios, axis=0)  # median over stars
    assert np.median(np.abs(per_bin - 1)) <= 0.01
    assert np.nanmedian(np.abs(ratios - 1)) <= 0.02  # and star by star, median over bins and stars


def test_residuals_over_propagated_sigma_have_unit_spread(demo):
    psf, truth, stamps = demo
    r = radius_map(psf.shape)
    spreads = []
    for e in EXPOSURES:
        s = stamps[e]
        for k in range(len(s)):
            row = s.stars[k]
            if row["norm_status"] != "ok" or _near_saturated_star(truth, e, row["gaia_id"], 200.0):
                continue  # the model is this star alone: a saturated neighbour's halo is not noise
            model = psf * _truth_row(truth, e, row["gaia_id"])["flux_adu"] / row["annular_flux"]
            sel = usable(s, k) & (r > 10) & (r <= 80)
            chi = (s.image[k] - model)[sel] / np.sqrt(s.variance[k][sel])
            spreads.append(1.4826 * np.median(np.abs(chi - np.median(chi))))
    # of the 150 normalized stars, 16 (field stars) lie within 200 px of a saturated one
    assert len(spreads) == 142
    assert all(abs(x - 1) <= 0.1 for x in spreads), spreads


def test_spikes_point_the_same_way_after_rotation_on_every_detector(demo):
    psf, _, stamps = demo
    r = radius_map(psf.shape)
    ring = (r >= 20) & (r < 50)
    checked = 0
    for e in EXPOSURES:
        s = stamps[e]
        for k in range(len(s)):
            if (
                s.stars["norm_status"][k] != "ok"
                or _annulus_error(s, k) > 0.02
                or usable(s, k)[ring].mean() < 0.5
            ):
                continue  # too faint, or most of the ring off the detector
            checked += 1
            angle = ring_angle_of_maximum(s.image[k], usable(s, k), r_in=20, r_out=50)
            assert abs(angle - 30.0) <= 5.0, (e, k, angle)  # the simulator's spikes: 30 deg
    assert checked >= 12


def test_stamp_from_a_90_degree_detector_matches_one_from_0_degrees(demo):
    _, _, stamps = demo
    a_set, b_set = stamps["demo_det0"], stamps["demo_det1"]
    ia = int(np.argmin(a_set.stars["g_mag"]))
    ib = int(np.argmin(b_set.stars["g_mag"]))
    a, b = a_set.image[ia], b_set.image[ib]
    r = radius_map(a.shape)
    sel = usable(a_set, ia) & usable(b_set, ib) & (r > 15) & (r < 60)

    def chi2(other, good):
        var = a_set.variance[ia] + b_set.variance[ib]
        scale = np.sum(a[good] * other[good] / var[good]) / np.sum(other[good] ** 2 / var[good])
        return np.mean((a[good] - scale * other[good]) ** 2 / var[good])

    right = chi2(b, sel)
    turned = np.rot90(b, k=1)  # the same stamp a quarter turn off
    wrong = chi2(turned, sel & np.rot90(usable(b_set, ib), k=1))
    assert right < 1.5
    assert wrong > 3 * right
