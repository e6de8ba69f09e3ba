"""The warp's local distortion-free map against astropy's WCS for TAN, TAN-SIP, TPV and ZPN."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from numpy.testing import assert_allclose
from scipy import optimize

from brightstamps.exposure import check_wcs, read_celestial_wcs
from brightstamps.warp import distortion_free_maps

BORE = (150.0, 2.0)


def _linear(ctype, *, crpix, scale_arcsec, rot_deg, crval=BORE):
    w = WCS(naxis=2)
    w.wcs.ctype = [f"RA---{ctype}", f"DEC--{ctype}"]
    w.wcs.crval = crval
    w.wcs.crpix = crpix
    c, s = np.cos(np.radians(rot_deg)), np.sin(np.radians(rot_deg))
    w.wcs.cd = scale_arcsec / 3600.0 * np.array([[-c, s], [s, c]])
    return w


def tan():
    return _linear("TAN", crpix=[1024.5, 1024.5], scale_arcsec=0.2, rot_deg=30.0)


def tan_sip():
    """TAN with SIP polynomials: quadratic terms and a radial cubic (0.5 % scale change 3000 px from the
    axis; the real HSC calexp's cubic terms are of this size, 1e-10 to 1e-9)."""
    header = _linear("TAN", crpix=[-500.0, 1800.0], scale_arcsec=0.168, rot_deg=-12.0).to_header()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    a = 5e-10
    header.update(
        {
            "A_ORDER": 3,
            "B_ORDER": 3,
            "A_2_0": 2e-6,
            "A_0_2": -1e-6,
            "B_1_1": 1.5e-6,
            "A_3_0": a,
            "A_1_2": a,
            "B_2_1": a,
            "B_0_3": a,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def zpn():
    """A zenithal polynomial (VISTA-like: r = theta + 44 theta^3, theta in radians), off-axis detector."""
    w = _linear("ZPN", crpix=[-2500.0, 1500.0], scale_arcsec=0.34, rot_deg=90.0)
    w.wcs.set_pv([(2, 1, 1.0), (2, 3, 44.0)])
    w.wcs.set()
    return w


def tpv(shared_data):
    """The real DECam CP header: RA---TPV with PV distortion terms."""
    path = shared_data / "decam_testcase6" / "images" / "c4d_181214_050844_ooi_g_ls9.S9.fits"
    with fits.open(path) as hdul:
        header = hdul[1].header
        assert header["CTYPE1"] == "RA---TPV" and "PV1_7" in header
        return read_celestial_wcs(header, source="ooi")


CASES = {
    "TAN": (tan, [[30.0, 40.0], [1000.0, 1024.0], [2000.0, 1900.0]], None),
    "TAN off-axis boresight": (tan, [[30.0, 40.0], [2000.0, 1900.0]], (150.4, 2.3)),
    "TAN-SIP": (tan_sip, [[30.0, 40.0], [1000.0, 1024.0], [2000.0, 1900.0]], None),
    "TPV": (tpv, [[50.0, 50.0], [1000.0, -1500.0], [-900.0, 2500.0]], None),
    "ZPN": (zpn, [[30.0, 40.0], [1000.0, 1024.0], [2000.0, 1900.0]], None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distortion_free_map_matches_the_wcs_at_the_stamp_corners(case, request):
    """s = c + A d + Q q(d) against the exact T^-1(T(c) + d), solved with scipy on astropy's WCS.

    T is LSST's distortion-free frame: gnomonic coordinates about the boresight, scaled by the
    inverse Jacobian of the WCS at the boresight's own pixel (solved here with all_world2pix).
    """
    make, centers, bore = CASES[case]
    wcs = make(request.getfixturevalue("shared_data")) if make is tpv else make()  # (skipped without it)
    bore = tuple(wcs.wcs.crval) if bore is None else bore
    check_wcs(wcs, (2048, 2048), source=case)  # invertible over a detector
    proj = WCS(naxis=2)
    proj.wcs.ctype, proj.wcs.crval, proj.wcs.crpix, proj.wcs.cdelt = (
        ["RA---TAN", "DEC--TAN"],
        bore,
        [0, 0],
        [1, 1],
    )

    def gnomonic(p):
        return proj.wcs_world2pix(wcs.all_pix2world(np.atleast_2d(p), 0), 1)[0]

    p0 = wcs.all_world2pix([bore], 0, tolerance=1e-12, maxiter=200)[0]
    assert np.allclose(wcs.all_pix2world([p0], 0)[0], bore, rtol=0, atol=1e-10)
    j0 = np.column_stack([(gnomonic(p0 + e) - gnomonic(p0 - e)) / 2 for e in np.eye(2)])

    def tan_pixels(p):
        return np.linalg.solve(j0, gnomonic(p))

    centers = np.array(centers)
    maps, quads = distortion_free_maps(wcs, centers, boresight=bore, half_size=(137, 137))
    for c, a, q in zip(centers, maps, quads, strict=True):
        for d in [(-137, -137), (137, -137), (-137, 137), (137, 137), (0, 75)]:
            d = np.array(d, float)
            with warnings.catch_warnings():  # fsolve warns when xtol is below the WCS's own round-off;
                warnings.simplefilter("ignore", RuntimeWarning)  # the residual is checked instead
                exact = optimize.fsolve(
                    lambda p, d=d, c=c: tan_pixels(p) - tan_pixels(c) - d, c + d, xtol=1e-10
                )
            assert np.hypot(*(tan_pixels(exact) - tan_pixels(c) - d)) < 1e-5
            ours = c + a @ d + q @ np.array([d[0] ** 2, d[0] * d[1], d[1] ** 2])
            assert np.hypot(*(ours - exact)) < 5e-3, (case, c, d, ours - exact)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_map_of_a_star_on_the_boresight_is_the_identity(case, request):
    """The frame is scaled by the WCS Jacobian at the boresight's own pixel: a star there has A = I.
    For TPV that pixel is not CRPIX (the PV terms move it by 16 px on this header)."""
    make, _, bore = CASES[case]
    wcs = make(request.getfixturevalue("shared_data")) if make is tpv else make()  # (skipped without it)
    bore = tuple(wcs.wcs.crval) if bore is None else bore
    p0 = wcs.all_world2pix([bore], 0, tolerance=1e-12, maxiter=200)[0]
    maps, _ = distortion_free_maps(wcs, p0[None], boresight=bore, half_size=(137, 137))
    assert_allclose(maps[0], np.eye(2), rtol=0, atol=1e-7)
