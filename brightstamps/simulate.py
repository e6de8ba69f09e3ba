"""Deterministic, seeded simulator of a bright-star demo visit whose truth is known exactly.

The simulator writes several detector exposures of one visit in the LSST calexp layout, a
Gaia-like reference catalog, the residual sky model of every exposure and a truth file. All
randomness comes from ``numpy.random.default_rng(seed)``, so a rerun with the same seed writes
byte-identical files.

Geometry
--------
The focal-plane frame F is measured in nominal pixels (``PIXEL_SCALE`` arcsec) from the optical
axis. Intermediate world coordinates (deg) are ``scale_deg * M @ F`` with ``M = diag(-1, 1)``
(east left, north up), followed by a gnomonic (TAN) projection about the boresight. Pixel ``p``
(0-based, ``(x, y)``) of a detector with yaw ``yaw`` maps to F by::

    u = p - p0                       # p0: pixel position of the optical axis (off the detector)
    u_und = u * (1 + k |u|^2)        # radial distortion, k = DISTORTION_K
    F = R(yaw) @ u_und               # R: counter-clockwise rotation

which is exactly a FITS TAN-SIP WCS with ``CRPIX = p0 + 1``, ``CD = scale_deg * M @ R(yaw)`` and
``A_3_0 = A_1_2 = B_2_1 = B_0_3 = k`` (see :func:`detector_wcs`).

PSF
---
:func:`psf_focal` is defined in the focal plane: a Gaussian core, Moffat-like power-law wings
(``~ r**-3``), two diffraction spikes along focal-plane angle ``SPIKE_ANGLE_DEG`` and a faint
off-centre ghost, so the pattern is not invariant under 90 or 180 degree turns. A star of flux
``f`` at true pixel centre ``c`` contributes ``f * psf_focal(F(p) - F(c)) * |det dF/dp|`` to
pixel ``p`` (point sampling at pixel centres times the pixel area in nominal pixels squared).
"""

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS, Sip
from scipy import ndimage

from .errors import InputError
from .exposure import Exposure, write_exposure
from .files import atomic_output, open_fits
from .masks import LSST_MASK_PLANES

__all__ = [
    "DEMO_DETECTORS",
    "BORESIGHT",
    "PIXEL_SCALE",
    "DISTORTION_K",
    "DETECTOR_PLACEMENT",
    "MJD_OBS",
    "REF_EPOCH",
    "ZERO_POINT",
    "GAIN",
    "READ_NOISE",
    "BACKGROUND",
    "SATURATION",
    "PSF_CORE_SIGMA",
    "PSF_WING_FRACTION",
    "PSF_WING_R0",
    "PSF_WING_BETA",
    "SPIKE_ANGLE_DEG",
    "SPIKE_AMPLITUDE",
    "SPIKE_WIDTH",
    "SPIKE_LENGTH",
    "SPIKE_TAPER",
    "GHOST_OFFSET",
    "GHOST_SIGMA",
    "GHOST_PEAK",
    "PSF_CORE_FRACTION",
    "SATURATION_G",
    "FIELD_G_RANGE",
    "FIELD_COUNT_SLOPE",
    "FIELD_MIN_SEP",
    "FIELD_SATURATED_SEP",
    "FIELD_SATURATED_SEP_FRACTION",
    "psf_focal",
    "true_psf_stamp",
    "detector_wcs",
    "detector_origin",
    "pixel_to_focal",
    "focal_to_pixel",
    "pixel_area",
    "focal_to_sky",
    "mag_to_flux",
    "field_magnitudes",
    "render_stars",
    "simulate_exposure",
    "simulate_demo",
    "read_true_psf",
    "main",
]

# --------------------------------------------------------------------------------------------
# Parameters of the truth
# --------------------------------------------------------------------------------------------

#: (detector id, yaw in deg) of the four demo detectors; detector ``d`` sits in focal-plane
#: quadrant ``d % 4`` (centre at angle ``45 + 90 d`` deg from the optical axis).
DEMO_DETECTORS = [(0, 0.0), (1, 90.0), (2, 180.0), (3, 270.0)]

#: Boresight (RA, Dec) in deg: CRVAL of every detector WCS.
BORESIGHT = (150.0, 2.0)
#: Nominal pixel scale, arcsec per pixel.
PIXEL_SCALE = 0.2
#: Radial distortion coefficient (per nominal pixel squared): ``u_und = u (1 + k |u|^2)``; the
#: local radial scale ``1 + 3 k r^2`` changes by about 1 % between the nearest and farthest
#: corners of a 2048 px (demo) detector.
DISTORTION_K = 2.8e-10
#: Focal-plane position of detector centres, indexed by ``detector % 4``: (distance from the
#: optical axis in nominal px, angle in deg). Different quadrants, and deliberately not
#: symmetric, so that every demo detector has its own ``p0``. For detectors larger than 1024 px
#: the distance grows by ``0.7072 (size - 1024)`` so that the axis stays off the detector.
DETECTOR_PLACEMENT = ((1300.0, 40.0), (1400.0, 140.0), (1250.0, 230.0), (1450.0, 310.0))

#: Observation epoch (MJD, TAI) and the catalog reference epoch (Julian year; MJD 57388.5).
MJD_OBS = 61041.0
REF_EPOCH = 2016.0
REF_EPOCH_MJD = 57388.5
_DT_YEARS = (MJD_OBS - REF_EPOCH_MJD) / 365.25  # catalog epoch to observation, years

#: Photometric zero point: ``flux_adu = 10 ** (-0.4 * (g - ZERO_POINT))``.
ZERO_POINT = 27.0
#: Gain (e-/ADU), read noise (e-), original (subtracted) background (e-), saturation (ADU).
GAIN = 1.0
READ_NOISE = 5.0
BACKGROUND = 400.0
SATURATION = 50000.0
#: Maximum absolute value (ADU) of the residual sky plane over a detector.
SKY_MAX = 15.0

#: Gaussian core sigma (nominal px).
PSF_CORE_SIGMA = 1.7
#: Flux fraction of the Moffat-like wings ``A (1 + (r/r0)^2)^-beta``, and their r0, beta.
PSF_WING_FRACTION = 0.15
PSF_WING_R0 = 5.0
PSF_WING_BETA = 1.5
#: Diffraction spikes ``S exp(-d_perp^2 / (2 w^2)) exp(-(d_par / T)^2) / (1 + (d_par / L)^2)``
#: along focal-plane angles ``SPIKE_ANGLE_DEG`` and ``SPIKE_ANGLE_DEG + 180``. The taper T
#: keeps them inside the normalization annulus (they are ~3x the wings at r = 30 px and < 3 %
#: of them at r = 75 px), so they shape the stamp without biasing the annulus statistic.
SPIKE_ANGLE_DEG = 30.0
SPIKE_AMPLITUDE = 1.3e-3
SPIKE_WIDTH = 1.2
SPIKE_LENGTH = 5.0
SPIKE_TAPER = 30.0
#: Ghost: Gaussian of sigma ``GHOST_SIGMA`` and peak ``GHOST_PEAK`` (per px^2, unit flux)
#: centred at focal-plane offset ``GHOST_OFFSET`` (nominal px) from the star.
GHOST_OFFSET = (35.0, 15.0)
GHOST_SIGMA = 6.0
GHOST_PEAK = 2.0e-6

_WING_AMPLITUDE = PSF_WING_FRACTION * (PSF_WING_BETA - 1.0) / (math.pi * PSF_WING_R0**2)
#: Flux of the two spikes together (integral over the plane).
#: integral of exp(-(p/T)^2) / (1 + (p/L)^2) dp = pi L exp(L^2/T^2) erfc(L/T)
SPIKE_FLUX = (
    SPIKE_AMPLITUDE
    * math.sqrt(2.0 * math.pi)
    * SPIKE_WIDTH
    * math.pi
    * SPIKE_LENGTH
    * math.exp((SPIKE_LENGTH / SPIKE_TAPER) ** 2)
    * math.erfc(SPIKE_LENGTH / SPIKE_TAPER)
)
#: Flux of the ghost.
GHOST_FLUX = GHOST_PEAK * 2.0 * math.pi * GHOST_SIGMA**2
#: Flux fraction of the Gaussian core: 0.85 minus the spike and ghost flux, so that the PSF
#: integrates to exactly 1 (about 0.7976).
PSF_CORE_FRACTION = 1.0 - PSF_WING_FRACTION - SPIKE_FLUX - GHOST_FLUX
_CORE_AMPLITUDE = PSF_CORE_FRACTION / (2.0 * math.pi * PSF_CORE_SIGMA**2)

#: Stars are rendered out to the radius where their light drops below this (ADU).
RENDER_THRESHOLD = 0.05
#: Stars whose centres lie up to this far (px) off a detector are rendered on it.
OFF_DETECTOR_MARGIN = 150.0
#: DETECTED threshold, in sigma of the (star-free) pixel noise.
DETECTION_SIGMA = 5.0
#: Variance (ADU^2) of a star-free pixel: the subtracted background's photon noise and the read noise.
_BASE_VARIANCE = BACKGROUND / GAIN + (READ_NOISE / GAIN) ** 2

_SPIKE_COS = math.cos(math.radians(SPIKE_ANGLE_DEG))
_SPIKE_SIN = math.sin(math.radians(SPIKE_ANGLE_DEG))

#: Demo field stars: G range and slope of the number counts ``dN/dG ~ 10 ** (FIELD_COUNT_SLOPE * G)``.
FIELD_G_RANGE = (8.0, 17.5)
FIELD_COUNT_SLOPE = 0.3
#: A field star's centre lies at least this far (px) from every other catalogue star (G < 18) of its
#: detector, and at least ``FIELD_SATURATED_SEP`` from a saturated one's centre (and
#: ``FIELD_MIN_SEP`` from its column, where its bleed trail runs). The demo packs 16 saturated
#: stars into four detectors, hundreds of times a real field's density of G < 8 stars: closer
#: than 300 px, most field stars would sit in a halo of 1-100 ADU per pixel, brighter than their
#: own wings, which a real field's stars rarely do.
FIELD_MIN_SEP = 25.0
FIELD_SATURATED_SEP = 300.0
#: ... or this fraction of the detector size on small detectors (tests), whichever is smaller.
FIELD_SATURATED_SEP_FRACTION = 0.15
#: Rejection-sampling draws per field star before its detector is declared full.
_FIELD_TRIES = 10_000


# --------------------------------------------------------------------------------------------
# PSF
# --------------------------------------------------------------------------------------------


def psf_focal(dx, dy):
    """True PSF in the focal plane.

    Parameters
    ----------
    dx, dy : array_like
        Offsets from the star in the focal-plane frame, nominal pixels (broadcast together).

    Returns
    -------
    numpy.ndarray
        Surface brightness per nominal pixel squared of a unit-flux star: Gaussian core (sigma
        ``PSF_CORE_SIGMA``, fraction ``PSF_CORE_FRACTION``), Moffat-like wings (fraction
        ``PSF_WING_FRACTION``, ``r0 = PSF_WING_R0``, ``beta = PSF_WING_BETA``), two diffraction
        spikes along ``SPIKE_ANGLE_DEG`` / ``+180`` and a ghost at ``GHOST_OFFSET``. The
        integral over the whole plane is 1.
    """
    dx = np.asarray(dx, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    r2 = dx * dx + dy * dy
    out = _CORE_AMPLITUDE * np.exp(r2 * (-0.5 / PSF_CORE_SIGMA**2))
    q = 1.0 + r2 * (1.0 / PSF_WING_R0**2)
    out += _WING_AMPLITUDE / (q * np.sqrt(q))  # q ** -1.5, PSF_WING_BETA
    par = dx * _SPIKE_COS + dy * _SPIKE_SIN
    perp = dy * _SPIKE_COS - dx * _SPIKE_SIN
    taper = np.exp(-(par * par) / SPIKE_TAPER**2 - perp * perp * (0.5 / SPIKE_WIDTH**2))
    par /= SPIKE_LENGTH
    out += SPIKE_AMPLITUDE * taper / (1.0 + par * par)
    gx = dx - GHOST_OFFSET[0]
    gy = dy - GHOST_OFFSET[1]
    out += GHOST_PEAK * np.exp((gx * gx + gy * gy) * (-0.5 / GHOST_SIGMA**2))
    return out


def true_psf_stamp(shape):
    """The true PSF sampled on a grid of the focal-plane frame.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)``, both odd; the star sits on the central pixel ``((ny-1)/2, (nx-1)/2)``.

    Returns
    -------
    numpy.ndarray
        ``psf_focal(x - cx, y - cy)`` indexed ``[y, x]`` (float64, unit-flux convention).

    Raises
    ------
    ValueError
        If a dimension is not a positive odd integer.
    """
    ny, nx = (int(n) for n in shape)
    if ny <= 0 or nx <= 0 or ny % 2 == 0 or nx % 2 == 0:
        msg = f"true_psf_stamp: shape {tuple(shape)} must have positive odd dimensions"
        raise ValueError(msg)
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    return psf_focal(x - (nx - 1) / 2, y - (ny - 1) / 2)


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _rotation(yaw_deg):
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    # exact values for multiples of 90 deg
    c, s = round(c, 15) + 0.0, round(s, 15) + 0.0
    return np.array([[c, -s], [s, c]])


def _undistort_radius(r_und):
    """Solve ``r + k r^3 = r_und`` for r (Newton, vectorized)."""
    r_und = np.asarray(r_und, dtype=np.float64)
    r = r_und.copy()
    for _ in range(8):
        r = r - (r + DISTORTION_K * r**3 - r_und) / (1.0 + 3.0 * DISTORTION_K * r**2)
    return r


def _detector_centre(detector, size):
    dist, angle = DETECTOR_PLACEMENT[int(detector) % 4]
    dist += 0.7072 * max(int(size) - 1024, 0)
    phi = math.radians(angle)
    return dist * np.array([math.cos(phi), math.sin(phi)])


def detector_origin(*, detector, yaw_deg, size):
    """Pixel position ``p0 = (x0, y0)`` (0-based) of the optical axis for a detector.

    Parameters
    ----------
    detector : int
        Detector id; the detector centre sits at ``DETECTOR_PLACEMENT[detector % 4]`` in the
        focal plane (1250-1450 nominal px from the axis, one quadrant each).
    yaw_deg : float
        Angle of the detector x axis in the focal plane, counter-clockwise, deg.
    size : int
        Detector size N (N x N px).

    Returns
    -------
    numpy.ndarray
        ``(x0, y0)``, off the detector.
    """
    f_centre = _detector_centre(detector, size)
    u_und = _rotation(yaw_deg).T @ f_centre
    r_und = math.hypot(*u_und)
    u = u_und * (float(_undistort_radius(r_und)) / r_und)
    centre = np.array([(size - 1) / 2.0, (size - 1) / 2.0])
    return centre - u


def pixel_to_focal(x, y, *, p0, yaw_deg):
    """Map detector pixels (0-based) to the focal-plane frame (nominal px).

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates.
    p0 : sequence of float
        Optical-axis pixel position (:func:`detector_origin`).
    yaw_deg : float
        Detector yaw, deg.

    Returns
    -------
    tuple of numpy.ndarray
        ``(Fx, Fy)``.
    """
    ux = np.asarray(x, dtype=np.float64) - p0[0]
    uy = np.asarray(y, dtype=np.float64) - p0[1]
    fac = 1.0 + DISTORTION_K * (ux * ux + uy * uy)
    ux = ux * fac
    uy = uy * fac
    rot = _rotation(yaw_deg)
    return rot[0, 0] * ux + rot[0, 1] * uy, rot[1, 0] * ux + rot[1, 1] * uy


def focal_to_pixel(fx, fy, *, p0, yaw_deg):
    """Inverse of :func:`pixel_to_focal`.

    Parameters
    ----------
    fx, fy : array_like
        Focal-plane coordinates, nominal px.
    p0 : sequence of float
        Optical-axis pixel position.
    yaw_deg : float
        Detector yaw, deg.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y)`` pixel coordinates (0-based).
    """
    fx = np.asarray(fx, dtype=np.float64)
    fy = np.asarray(fy, dtype=np.float64)
    rot = _rotation(yaw_deg)
    ux = rot[0, 0] * fx + rot[1, 0] * fy
    uy = rot[0, 1] * fx + rot[1, 1] * fy
    r_und = np.hypot(ux, uy)
    r = _undistort_radius(r_und)
    with np.errstate(invalid="ignore", divide="ignore"):
        fac = np.where(r_und > 0, r / np.where(r_und > 0, r_und, 1.0), 1.0)
    return ux * fac + p0[0], uy * fac + p0[1]


def pixel_area(x, y, *, p0):
    """Area of pixel ``(x, y)`` in nominal pixels squared, ``|det dF/dp|``.

    Parameters
    ----------
    x, y : array_like
        Pixel coordinates (0-based).
    p0 : sequence of float
        Optical-axis pixel position.

    Returns
    -------
    numpy.ndarray
        ``(1 + k r^2) (1 + 3 k r^2)`` with ``r = |p - p0|``.
    """
    ux = np.asarray(x, dtype=np.float64) - p0[0]
    uy = np.asarray(y, dtype=np.float64) - p0[1]
    kr2 = DISTORTION_K * (ux * ux + uy * uy)
    return (1.0 + kr2) * (1.0 + 3.0 * kr2)


def focal_to_sky(fx, fy, *, boresight=BORESIGHT):
    """Sky position (deg) of focal-plane points: ``scale * diag(-1, 1) @ F`` then TAN.

    Parameters
    ----------
    fx, fy : array_like
        Focal-plane coordinates, nominal px.
    boresight : tuple of float
        (RA, Dec) of the optical axis, deg.

    Returns
    -------
    tuple of numpy.ndarray
        ``(ra, dec)`` in deg, RA in [0, 360).
    """
    scale = math.radians(PIXEL_SCALE / 3600.0)
    xi = -np.asarray(fx, dtype=np.float64) * scale
    eta = np.asarray(fy, dtype=np.float64) * scale
    ra0, dec0 = (math.radians(v) for v in boresight)
    denom = math.cos(dec0) - eta * math.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(eta * math.cos(dec0) + math.sin(dec0), np.hypot(xi, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def detector_wcs(*, detector, yaw_deg, size, boresight=BORESIGHT):
    """TAN-SIP WCS of a detector, exactly equal to the focal-plane model.

    Parameters
    ----------
    detector : int
        Detector id (fixes its focal-plane quadrant, see :func:`detector_origin`).
    yaw_deg : float
        Detector yaw, deg.
    size : int
        Detector size N.
    boresight : tuple of float
        (RA, Dec) of the optical axis, deg (CRVAL).

    Returns
    -------
    astropy.wcs.WCS
        ``CTYPE = RA---TAN-SIP / DEC--TAN-SIP``, ``CRPIX = p0 + 1``,
        ``CD = scale_deg * diag(-1, 1) @ R(yaw)``, third-order SIP with
        ``A_3_0 = A_1_2 = B_2_1 = B_0_3 = DISTORTION_K`` (no inverse AP/BP terms).
    """
    p0 = detector_origin(detector=detector, yaw_deg=yaw_deg, size=size)
    scale_deg = PIXEL_SCALE / 3600.0
    cd = scale_deg * np.diag([-1.0, 1.0]) @ _rotation(yaw_deg)
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[3, 0] = a[1, 2] = DISTORTION_K
    b[2, 1] = b[0, 3] = DISTORTION_K
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [float(boresight[0]), float(boresight[1])]
    wcs.wcs.crpix = [p0[0] + 1.0, p0[1] + 1.0]
    wcs.wcs.cd = cd
    wcs.wcs.radesys = "ICRS"
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.pixel_shape = (int(size), int(size))
    wcs.wcs.set()
    return wcs


def mag_to_flux(mag):
    """Flux in ADU of a star of G magnitude *mag*: ``10 ** (-0.4 * (mag - ZERO_POINT))``."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - ZERO_POINT))


#: G of a star whose noiseless peak reaches ``SATURATION`` when it is centred on a pixel (about
#: 11.91; 11.82 when centred on a pixel corner). Brighter stars saturate.
SATURATION_G = ZERO_POINT - 2.5 * math.log10(SATURATION / float(psf_focal(0.0, 0.0)))
#: Field stars brighter than this count as saturated when they are placed (margin for sky and noise).
_PLACE_SATURATED_G = SATURATION_G + 0.1


def field_magnitudes(rng, n):
    """G magnitudes of *n* field stars, with number counts rising as in a real field.

    The density is ``dN/dG ~ 10 ** (a G)`` (``a = FIELD_COUNT_SLOPE = 0.3``) on
    ``[G0, G1) = FIELD_G_RANGE = [8, 17.5)``; each star's G is the inverse of the cumulative
    distribution at one uniform draw ``u``::

        G = log10(10 ** (a G0) + u (10 ** (a G1) - 10 ** (a G0))) / a

    With the defaults, 2.0 % of the stars are brighter than ``SATURATION_G`` (11.9), 17.7 % are
    brighter than G = 15, 82.3 % lie in [15, 17.5) and the median is G = 16.5.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator; exactly *n* uniforms are drawn (``rng.random(n)``).
    n : int
        Number of stars.

    Returns
    -------
    numpy.ndarray
        *n* magnitudes in draw order (float64).
    """
    lo, hi = (10.0 ** (FIELD_COUNT_SLOPE * g) for g in FIELD_G_RANGE)
    u = rng.random(int(n))
    return np.log10(lo + u * (hi - lo)) / FIELD_COUNT_SLOPE


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _render_radius(flux):
    """Radius (nominal px) beyond which a star of *flux* contributes < RENDER_THRESHOLD."""
    thr = RENDER_THRESHOLD
    radii = [8.0]
    peak = flux * _CORE_AMPLITUDE
    if peak > thr:
        radii.append(PSF_CORE_SIGMA * math.sqrt(2.0 * math.log(peak / thr)))
    wing = flux * _WING_AMPLITUDE
    if wing > thr:
        radii.append(PSF_WING_R0 * math.sqrt(max((wing / thr) ** (1.0 / PSF_WING_BETA) - 1.0, 0.0)))
    spike = flux * SPIKE_AMPLITUDE
    if spike > thr:  # the taper bounds the spikes: exp(-(p/T)^2) < thr / spike
        radii.append(SPIKE_TAPER * math.sqrt(math.log(spike / thr)))
    ghost = flux * GHOST_PEAK
    if ghost > thr:
        radii.append(math.hypot(*GHOST_OFFSET) + GHOST_SIGMA * math.sqrt(2.0 * math.log(ghost / thr)))
    return max(radii)


def _as_star_columns(stars):
    """Return float arrays x, y, flux from a Table / structured array / mapping / (n, 3) array."""
    if stars is None:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    if isinstance(stars, np.ndarray) and stars.dtype.names is None:
        arr = np.asarray(stars, dtype=np.float64).reshape(-1, 3)
        return arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()
    try:
        cols = [np.atleast_1d(np.asarray(stars[name], dtype=np.float64)) for name in ("x", "y", "flux")]
    except (KeyError, ValueError, IndexError) as err:
        msg = f"stars must have columns x, y, flux (true pixel position, ADU): {err}"
        raise ValueError(msg) from None
    return cols[0], cols[1], cols[2]


def render_stars(*, detector, yaw_deg, size, stars, focal_maps=None):
    """Noiseless image of the stars on a detector (no sky).

    Parameters
    ----------
    detector : int
        Detector id.
    yaw_deg : float
        Detector yaw, deg.
    size : int
        Detector size N.
    stars : table-like
        Columns ``x``, ``y`` (true pixel centre, 0-based; may lie off the detector) and ``flux``
        (ADU); or an ``(n, 3)`` array of the same.
    focal_maps : tuple of numpy.ndarray, optional
        Precomputed ``(Fx, Fy, area)`` maps of the detector (internal reuse).

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` float64 model, ``sum_i flux_i * psf_focal(F(p) - F(c_i)) * |det dF/dp|``.
    """
    size = int(size)
    p0 = detector_origin(detector=detector, yaw_deg=yaw_deg, size=size)
    if focal_maps is None:
        focal_maps = _focal_maps(p0, yaw_deg, size)
    fx_map, fy_map, area_map = focal_maps
    xs, ys, fluxes = _as_star_columns(stars)
    model = np.zeros((size, size))
    for x, y, flux in zip(xs, ys, fluxes, strict=True):
        if not (np.isfinite(flux) and np.isfinite(x) and np.isfinite(y)) or flux <= 0:
            continue
        radius = _render_radius(flux) * 1.03 + 2.0
        x0, x1 = max(int(math.floor(x - radius)), 0), min(int(math.ceil(x + radius)) + 1, size)
        y0, y1 = max(int(math.floor(y - radius)), 0), min(int(math.ceil(y + radius)) + 1, size)
        if x0 >= x1 or y0 >= y1:
            continue
        fcx, fcy = pixel_to_focal(x, y, p0=p0, yaw_deg=yaw_deg)
        box = (slice(y0, y1), slice(x0, x1))
        model[box] += flux * psf_focal(fx_map[box] - fcx, fy_map[box] - fcy) * area_map[box]
    return model


def _focal_maps(p0, yaw_deg, size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    fx, fy = pixel_to_focal(x, y, p0=p0, yaw_deg=yaw_deg)
    return fx, fy, pixel_area(x, y, p0=p0)


def _star_peak(x, y, flux, *, p0, yaw_deg):
    """Noiseless peak (ADU) of one star over the 3x3 pixel centres nearest its centre."""
    gx, gy = np.meshgrid(np.round(x) + np.arange(-1, 2), np.round(y) + np.arange(-1, 2))
    fx, fy = pixel_to_focal(gx, gy, p0=p0, yaw_deg=yaw_deg)
    fcx, fcy = pixel_to_focal(x, y, p0=p0, yaw_deg=yaw_deg)
    return float(np.max(flux * psf_focal(fx - fcx, fy - fcy) * pixel_area(gx, gy, p0=p0)))


def _sky_coefficients(rng, size):
    """Random residual-sky plane ``a + b x + c y`` with ``|value| <= SKY_MAX`` on the detector."""
    level, gx, gy = rng.uniform(-1.0, 1.0, size=3) * np.array([5.0, 5.0, 5.0])
    half = (size - 1) / 2.0
    b = gx / max(half, 1.0)
    c = gy / max(half, 1.0)
    a = level - b * half - c * half
    return float(a), float(b), float(c)


def _sky_plane(coeffs, size):
    a, b, c = coeffs
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    return a + b * x + c * y


def simulate_exposure(
    path,
    *,
    detector,
    yaw_deg,
    size,
    stars,
    seed,
    band="r",
    sky=None,
    sky_path=None,
    noise=True,
    cosmic_rays=True,
    bad_column=True,
    saturation=True,
    mjd_obs=MJD_OBS,
    boresight=BORESIGHT,
    extra_cards=(),
):
    """Render one detector exposure and write it in the LSST calexp layout.

    Parameters
    ----------
    path : str or os.PathLike
        Output FITS file (image, mask, variance; written atomically).
    detector : int
        Detector id (primary card ``DETECTOR``; fixes the focal-plane quadrant).
    yaw_deg : float
        Detector yaw, deg (primary card ``DET-YAW``).
    size : int
        Detector size N (N x N px).
    stars : table-like
        Columns ``x``, ``y`` (true pixel centre, 0-based, may lie off the detector) and
        ``flux`` (ADU), or an ``(n, 3)`` array; may be empty or None.
    seed : int or numpy.random.SeedSequence or numpy.random.Generator
        Seed of ``numpy.random.default_rng`` for the sky, noise, cosmic rays and bad column.
    band : str
        Filter name (``FILTER`` and ``BAND`` cards).
    sky : tuple of float, optional
        Residual sky plane ``(a, b, c)``: ``a + b x + c y`` ADU; random (``|value| <= 15``)
        when None.
    sky_path : str or os.PathLike, optional
        Where to write the sky plane as a full-size float32 primary image.
    noise : bool
        Add Gaussian noise of variance ``400 + 25 + max(stars, 0)``.
    cosmic_rays : bool
        Add about ``30 (N / 1024)^2`` cosmic rays (single pixels or 2-px tracks, CR bit).
    bad_column : bool
        Flag one partial column BAD (pixel values unchanged).
    saturation : bool
        Pixels whose (noisy) value reaches ``SATURATION`` are set to it and flagged SAT; each
        connected saturated region bleeds along the column of its brightest pixel, both ways,
        by ``sum(max(sky + stars - SATURATION, 0)) / SATURATION`` pixels in total.
    mjd_obs : float
        ``MJD-OBS`` card.
    boresight : tuple of float
        (RA, Dec) of the optical axis, deg.
    extra_cards : iterable of (str, object)
        More primary-header cards.

    Returns
    -------
    dict
        ``path``, ``sky_path``, ``sky`` (a, b, c), ``exposure`` (:class:`Exposure` as written),
        ``model`` (noiseless stars, float64) and ``stars`` (astropy Table with ``x``, ``y``,
        ``flux``, ``peak_adu``, ``saturated``, ``on_detector``).
    """
    size = int(size)
    rng = np.random.default_rng(seed)  # draws, in order: sky plane, noise, cosmic rays, bad column
    p0 = detector_origin(detector=detector, yaw_deg=yaw_deg, size=size)
    xs, ys, fluxes = _as_star_columns(stars)
    model = render_stars(
        detector=detector,
        yaw_deg=yaw_deg,
        size=size,
        stars=np.column_stack([xs, ys, fluxes]),
        focal_maps=_focal_maps(p0, yaw_deg, size),
    )
    sky_coeffs = tuple(float(v) for v in sky) if sky is not None else _sky_coefficients(rng, size)
    sky_img = _sky_plane(sky_coeffs, size)
    image, variance = _noisy_image(rng, sky_img, model, noise=noise)

    mask = _defects(
        rng, image, sky_img, model, saturation=saturation, cosmic_rays=cosmic_rays, bad_column=bad_column
    )
    cards = [
        ("BORE-RA", float(boresight[0])),
        ("BORE-DEC", float(boresight[1])),
        ("MJD-OBS", float(mjd_obs)),
        ("FILTER", str(band)),
        ("BAND", str(band)),
        ("DETECTOR", int(detector)),
        ("DET-YAW", float(yaw_deg)),
        ("ZP", ZERO_POINT),
        ("GAIN", GAIN),
        ("SATLEV", SATURATION),
        *extra_cards,
    ]
    wcs = detector_wcs(detector=detector, yaw_deg=yaw_deg, size=size, boresight=boresight)
    exposure = Exposure(
        image.astype(np.float32),
        mask,
        variance.astype(np.float32),
        wcs,
        dict(LSST_MASK_PLANES),
        fits.Header(cards),
        str(path),
    )
    write_exposure(path, exposure, primary_cards=cards)
    if sky_path is not None:
        _write_sky_plane(sky_path, sky_img, sky_coeffs, detector=detector)
    return {
        "path": str(path),
        "sky_path": None if sky_path is None else str(sky_path),
        "sky": sky_coeffs,
        "exposure": exposure,
        "model": model,
        "stars": _star_truth(xs, ys, fluxes, sky_coeffs, size=size, p0=p0, yaw_deg=yaw_deg),
    }


def _noisy_image(rng, sky_img, model, *, noise):
    """Sky plus stars and their variance; Gaussian noise of that variance added when *noise*."""
    variance = _BASE_VARIANCE + np.maximum(model, 0.0) / GAIN
    image = sky_img + model
    if noise:
        image = image + rng.standard_normal(image.shape) * np.sqrt(variance)
    return image, variance


def _detected(model):
    """DETECTED: the stars' light above ``DETECTION_SIGMA`` of the star-free noise, grown by one pixel."""
    detected = model > DETECTION_SIGMA * math.sqrt(_BASE_VARIANCE)
    return ndimage.binary_dilation(detected, structure=np.ones((3, 3), dtype=bool))


def _saturate(image, sky_img, model):
    """Set saturated pixels to ``SATURATION``, bleeding along columns; return them (*image* is changed).

    Each connected saturated region bleeds along the column of its brightest noiseless pixel,
    both ways, by ``sum(max(sky + stars - SATURATION, 0)) / SATURATION`` pixels in total.
    """
    sat = image >= SATURATION
    if not sat.any():
        return sat
    size = image.shape[0]
    excess_img = np.maximum(sky_img + model - SATURATION, 0.0)
    labels, nlab = ndimage.label(sat, structure=np.ones((3, 3), dtype=bool))
    index = np.arange(1, nlab + 1)
    excess = ndimage.sum_labels(excess_img, labels, index)
    peaks = ndimage.maximum_position(model, labels, index)
    bleed = np.zeros_like(sat)
    for lab, exc, (_, px) in zip(index, excess, peaks, strict=True):
        length = int(round(exc / SATURATION))
        if length <= 0:
            continue
        rows = np.nonzero(labels[:, px] == lab)[0]
        below = length // 2
        above = length - below
        lo = max(int(rows.min()) - below, 0)
        hi = min(int(rows.max()) + above, size - 1)
        bleed[lo : hi + 1, px] = True
    sat |= bleed
    image[sat] = SATURATION
    return sat


def _add_cosmic_rays(rng, image):
    """Add about ``30 (N / 1024)^2`` cosmic rays (single pixels or 2-px tracks); return their pixels."""
    size = image.shape[0]
    n_cr = int(round((size / 1024.0) ** 2 * 30))
    cx = rng.integers(0, size, n_cr)
    cy = rng.integers(0, size, n_cr)
    amp = rng.uniform(2000.0, 20000.0, n_cr)
    track = rng.random(n_cr) < 0.5
    steps = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    step = steps[rng.integers(0, 8, n_cr)]
    amp2 = amp * rng.uniform(0.5, 1.0, n_cr)
    cr_x = np.concatenate([cx, np.clip(cx[track] + step[track, 0], 0, size - 1)])
    cr_y = np.concatenate([cy, np.clip(cy[track] + step[track, 1], 0, size - 1)])
    cr_amp = np.concatenate([amp, amp2[track]])
    np.add.at(image, (cr_y, cr_x), cr_amp)
    image[cr_y, cr_x] = np.minimum(image[cr_y, cr_x], SATURATION)
    return cr_y, cr_x


def _bad_column(rng, size):
    """Column and first row of a partial bad column (to the top of the detector)."""
    bx = int(rng.integers(size // 8, max(7 * size // 8, size // 8 + 1)))
    by = int(rng.integers(0, max(size // 2, 1)))
    return bx, by


def _defects(rng, image, sky_img, model, *, saturation, cosmic_rays, bad_column):
    """Saturate *image* and add cosmic rays (in place); return the mask with SAT, CR, DETECTED and BAD."""
    bit = {name: 1 << b for name, b in LSST_MASK_PLANES.items()}
    mask = np.zeros(image.shape, dtype=np.int32)
    detected = _detected(model)
    if saturation:
        sat = _saturate(image, sky_img, model)
        mask[sat] |= bit["SAT"]
        detected |= sat
    if cosmic_rays:
        cr = _add_cosmic_rays(rng, image)
        mask[cr] |= bit["CR"]
        detected[cr] = True
    mask[detected] |= bit["DETECTED"]
    if bad_column:
        bx, by = _bad_column(rng, image.shape[0])
        mask[by:, bx] |= bit["BAD"]
    return mask


def _star_truth(xs, ys, fluxes, sky_coeffs, *, size, p0, yaw_deg):
    """Per-star truth table: ``x``, ``y``, ``flux``, ``peak_adu``, ``saturated``, ``on_detector``."""
    peak = np.array(
        [
            _star_peak(x, y, f, p0=p0, yaw_deg=yaw_deg) if f > 0 else 0.0
            for x, y, f in zip(xs, ys, fluxes, strict=True)
        ]
    )
    sky_at = sky_coeffs[0] + sky_coeffs[1] * xs + sky_coeffs[2] * ys
    on_det = (xs >= -0.5) & (xs < size - 0.5) & (ys >= -0.5) & (ys < size - 0.5)
    return Table(
        {
            "x": xs,
            "y": ys,
            "flux": fluxes,
            "peak_adu": peak,
            "saturated": (peak + sky_at) >= SATURATION,
            "on_detector": on_det,
        }
    )


def _write_sky_plane(path, sky_img, sky_coeffs, *, detector):
    """The sky plane as a full-size float32 primary image, its coefficients in the header."""
    hdu = fits.PrimaryHDU(sky_img.astype(np.float32))
    hdu.header["DETECTOR"] = int(detector)
    hdu.header["SKYA"] = (sky_coeffs[0], "sky = SKYA + SKYB*x + SKYC*y (ADU, 0-based px)")
    hdu.header["SKYB"] = sky_coeffs[1]
    hdu.header["SKYC"] = sky_coeffs[2]
    with atomic_output(path) as tmp:
        hdu.writeto(tmp)


# --------------------------------------------------------------------------------------------
# The demo visit
# --------------------------------------------------------------------------------------------


def _place(rng, n, size, taken, *, min_sep, margin=5.0, off=False):
    """Draw *n* positions, at least *min_sep* from each other and from *taken*."""
    out = []
    tries = 0
    sep = min_sep
    while len(out) < n:
        tries += 1
        if tries % 2000 == 0:  # crowded (small detectors): relax the spacing
            sep *= 0.8
        if off:
            side = rng.integers(0, 4)
            dist = rng.uniform(20.0, 100.0)
            along = rng.uniform(margin, size - 1 - margin)
            x, y = [(-dist, along), (size - 1 + dist, along), (along, -dist), (along, size - 1 + dist)][side]
        else:
            x, y = rng.uniform(margin, size - 1 - margin, size=2)
        if all(math.hypot(x - tx, y - ty) >= sep for tx, ty in taken + out):
            out.append((float(x), float(y)))
    return out


def _write_table(path, columns, *, header_cards=(), name=None):
    hdu = fits.BinTableHDU(Table(columns), name=name)
    primary = fits.PrimaryHDU()
    for key, value in header_cards:
        primary.header[key] = value
    with atomic_output(path) as tmp:
        fits.HDUList([primary, hdu]).writeto(tmp)


def simulate_demo(outdir, *, seed, detector_size, n_bright, n_faint, n_field, band="r"):
    """Write the demo visit: exposures, sky models, reference catalog and truth.

    Per detector: ``n_bright`` saturated bright stars on the detector (g in [6.3, 7.3], kind
    ``sat``), two unsaturated stars (g in [12.5, 13.0], ``unsat``), one bright star (g in
    [6.8, 7.3], ``off``) centred 20-100 px off the detector, ``n_faint`` faint stars (g in
    [19, 22], ``faint``: below the workflow's magnitude limit, neighbours only) and ``n_field``
    field stars (``field``). Bright stars lie at least ``0.4 * detector_size`` px apart (800 px
    on the demo's 2048 px detectors) so that their wings barely touch each other's annuli, and
    the unsaturated ones ``0.1 * detector_size`` from them.
    Detector 0's first unsaturated star has a proper motion of 500 mas/yr; detector 1 has one
    extra bright star (g = 9.0, ``nan``) whose catalog magnitude and flux are NaN; 10 catalog
    stars lie outside the visit footprint.

    Field stars give the demo a real field's magnitude range, a few saturated stars and many
    fainter unsaturated ones: their G follows ``dN/dG ~ 10 ** (0.3 G)`` on [8, 17.5) (see
    :func:`field_magnitudes`: 2.0 % brighter than the saturation limit ``SATURATION_G`` = 11.9,
    82.3 % in [15, 17.5), median 16.5; about 3 saturated ones among the default 4 x 40). They are
    placed brightest first, uniformly on the detector (5 px from its edges) but at least
    ``FIELD_MIN_SEP`` = 25 px from every other star of G < 18 of the detector, and, where either
    star is saturated (G < ``SATURATION_G`` + 0.1), at least ``FIELD_SATURATED_SEP`` = 300 px
    apart and 25 px apart in x (bleed trails run along columns, up to the whole detector): a field
    star's core lies on no other star's core or bleed trail, though its stamp may hold another
    star's halo. They get the other stars' small random proper motions and are in the catalog
    and the truth like every star.

    One generator (``numpy.random.default_rng(seed)``) is drawn in this order: the exposures'
    seeds; per detector, every star but the field stars (positions: saturated, off,
    unsaturated and NaN, faint; then G: unsaturated, saturated, off, faint); 10 far stars; the
    proper motions of all these, the fast mover's direction and their ids; then per detector the
    field stars' G (``n_field`` uniforms) and positions (rejection sampling, brightest first);
    then the field stars' proper motions (amplitudes, then angles) and their ids. The field stars
    come last so that every other star is drawn as with ``n_field = 0``, and a rerun with the
    same seed writes byte-identical files.

    Parameters
    ----------
    outdir : str or os.PathLike
        Output directory (created).
    seed : int
        Seed of ``numpy.random.default_rng``.
    detector_size : int
        Detector size N (N x N px).
    n_bright : int
        Saturated bright stars per detector with centres on the detector.
    n_faint : int
        Faint stars per detector.
    n_field : int
        Field stars per detector.
    band : str
        Filter name.

    Returns
    -------
    dict
        ``exposures`` (list of paths), ``sky_models`` (list), ``catalog``, ``truth`` (paths),
        ``paths`` (every written file). The truth's STARS table has one row per star and exposure
        it is rendered on, with its ``kind`` (``sat``, ``unsat``, ``nan``, ``off``, ``faint``,
        ``field``).

    Raises
    ------
    brightstamps.errors.InputError
        If a detector has no room for ``n_field`` field stars (the message names ``demo.n_field``).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    size = int(detector_size)
    # one generator, drawn in this order: exposure seeds, detector stars, far stars, proper motions,
    # ids; then the field stars (G and positions per detector, proper motions, ids)
    rng = np.random.default_rng(seed)
    exposure_seeds = rng.integers(0, 2**62, size=len(DEMO_DETECTORS))
    rows = []  # dicts: host, x, y, g, kind, fx, fy (true positions at the observation epoch)
    for det, yaw in DEMO_DETECTORS:
        rows += _detector_stars(rng, det, yaw, size, n_bright=n_bright, n_faint=n_faint)
    rows += _far_stars(rng)
    pmra, pmdec = _proper_motions(rng, rows)
    ids = _source_ids(rng, len(rows))
    field = []
    for det, yaw in DEMO_DETECTORS:
        field += _field_stars(rng, det, yaw, size, n_field, [r for r in rows if r["host"] == det])
    pm_amp = rng.uniform(0.0, 20.0, len(field))
    pm_ang = rng.uniform(0.0, 2.0 * math.pi, len(field))
    rows += field
    pmra = np.concatenate([pmra, pm_amp * np.cos(pm_ang)])
    pmdec = np.concatenate([pmdec, pm_amp * np.sin(pm_ang)])
    ids = np.concatenate([ids, _more_source_ids(rng, len(field), ids)])
    hosted = np.array([i for i, r in enumerate(rows) if r["host"] >= 0], dtype=np.int64)

    fxs = np.array([r["fx"] for r in rows])
    fys = np.array([r["fy"] for r in rows])
    ra_true, dec_true = _true_positions(rows, fxs, fys, size)
    g_true = np.array([r["g"] for r in rows])
    catalog = _catalog_columns(rows, ids, ra_true, dec_true, g_true, pmra, pmdec)
    catalog_path = outdir / "catalog.fits"
    _write_table(
        catalog_path, catalog, header_cards=[("REFEPOCH", REF_EPOCH), ("ORIGIN", "brightstamps.simulate")]
    )

    per_star = {
        "source_id": ids,
        "g_mag": g_true,
        "catalog_g_mag": catalog["phot_g_mean_mag"],
        "ra_true": ra_true,
        "dec_true": dec_true,
        "pmra": pmra,
        "pmdec": pmdec,
        "kind": np.array([r["kind"] for r in rows]),
    }
    exposures, skies = [], []
    truth_stars = {k: [] for k in _TRUTH_STARS}
    truth_detectors = {k: [] for k in _TRUTH_DETECTORS}
    for (det, yaw), exp_seed in zip(DEMO_DETECTORS, exposure_seeds, strict=True):
        name = f"demo_det{det}"
        sel, px, py = _stars_near_detector(
            det, yaw, size, [rows[i] for i in hosted], fxs[hosted], fys[hosted]
        )
        sel = hosted[sel]  # indices into rows
        stars = {"x": px, "y": py, "flux": mag_to_flux(g_true[sel])}
        res = simulate_exposure(
            outdir / f"{name}.fits",
            detector=det,
            yaw_deg=yaw,
            size=size,
            stars=stars,
            seed=int(exp_seed),
            band=band,
            sky_path=outdir / f"{name}_sky.fits",
            extra_cards=[("EXPNAME", name)],
        )
        exposures.append(res["path"])
        skies.append(res["sky_path"])
        _add_truth(truth_stars, name, det, sel, res["stars"], per_star)
        p0 = detector_origin(detector=det, yaw_deg=yaw, size=size)
        centre = _detector_centre(det, size)
        values = (name, det, yaw, p0[0], p0[1], *centre, *res["sky"])
        for key, val in zip(_TRUTH_DETECTORS, values, strict=True):
            truth_detectors[key].append(val)

    truth_path = outdir / "truth.fits"
    _write_truth(truth_path, seed=seed, size=size, band=band, stars=truth_stars, detectors=truth_detectors)
    paths = [*exposures, *skies, str(catalog_path), str(truth_path)]
    return {
        "exposures": exposures,
        "sky_models": skies,
        "catalog": str(catalog_path),
        "truth": str(truth_path),
        "paths": paths,
    }


def _detector_stars(rng, det, yaw, size, *, n_bright, n_faint):
    """The demo stars hosted by one detector: true pixel and focal-plane positions, G and kind."""
    n_nan = 1 if det == 1 else 0  # detector 1's extra bright star, whose catalog G is NaN
    sat = _place(rng, n_bright, size, [], min_sep=0.4 * size)
    off = _place(rng, 1, size, sat, min_sep=0.4 * size, off=True)
    others = _place(rng, 2 + n_nan, size, sat + off, min_sep=0.1 * size)
    faint = _place(rng, n_faint, size, [], min_sep=0.0)
    g_unsat = rng.uniform(12.5, 13.0, 2)
    g_sat = rng.uniform(6.3, 7.3, n_bright)
    g_off = rng.uniform(6.8, 7.3, 1)
    g_faint = rng.uniform(19.0, 22.0, n_faint)
    positions = others[:2] + sat + others[2:] + off + faint
    mags = list(g_unsat) + list(g_sat) + ([9.0] if n_nan else []) + list(g_off) + list(g_faint)
    kinds = ["unsat"] * 2 + ["sat"] * n_bright + ["nan"] * n_nan + ["off"] + ["faint"] * n_faint
    p0 = detector_origin(detector=det, yaw_deg=yaw, size=size)
    rows = []
    for (x, y), g, kind in zip(positions, mags, kinds, strict=True):
        fx, fy = pixel_to_focal(x, y, p0=p0, yaw_deg=yaw)
        rows.append(
            {"host": det, "x": x, "y": y, "g": float(g), "kind": kind, "fx": float(fx), "fy": float(fy)}
        )
    return rows


def _field_stars(rng, det, yaw, size, n, others, *, margin=5.0):
    """The *n* field stars of one detector, placed clear of the cores and bleed trails of *others*.

    Draws *n* G (:func:`field_magnitudes`), then places the stars brightest first by rejection
    sampling (``rng.uniform`` pairs): a candidate is kept when it lies at least ``FIELD_MIN_SEP``
    from every star of G < 18 placed so far (*others*, then field stars) and, where either star is
    saturated, ``FIELD_SATURATED_SEP`` (at most ``FIELD_SATURATED_SEP_FRACTION * size``) from it
    and ``FIELD_MIN_SEP`` from its column.
    """
    mags = np.sort(field_magnitudes(rng, n))
    catalogued = [r for r in others if r["g"] < 18.0]
    tx = [r["x"] for r in catalogued]
    ty = [r["y"] for r in catalogued]
    tsat = [r["g"] < _PLACE_SATURATED_G for r in catalogued]
    p0 = detector_origin(detector=det, yaw_deg=yaw, size=size)
    sat_sep = min(FIELD_SATURATED_SEP, FIELD_SATURATED_SEP_FRACTION * size)
    rows = []
    for g in mags:
        sat = g < _PLACE_SATURATED_G
        x_t, y_t, s_t = np.array(tx), np.array(ty), np.array(tsat, dtype=bool)
        for _ in range(_FIELD_TRIES):
            x, y = rng.uniform(margin, size - 1 - margin, size=2)
            dist = np.hypot(x_t - x, y_t - y)
            near_sat = s_t | sat
            if np.all(dist >= FIELD_MIN_SEP) and not np.any(
                near_sat & ((dist < sat_sep) | (np.abs(x_t - x) < FIELD_MIN_SEP))
            ):
                break
        else:
            msg = (
                f"demo.n_field = {n}: detector {det} ({size} x {size} px) has room for only {len(rows)} "
                f"field stars {FIELD_MIN_SEP:g} px from the other stars and {sat_sep:g} px "
                f"(and {FIELD_MIN_SEP:g} px in x) from the saturated ones; lower demo.n_field "
                "or raise demo.detector_size"
            )
            raise InputError(msg)
        x, y = float(x), float(y)
        tx.append(x)
        ty.append(y)
        tsat.append(sat)
        fx, fy = pixel_to_focal(x, y, p0=p0, yaw_deg=yaw)
        rows.append(
            {"host": det, "x": x, "y": y, "g": float(g), "kind": "field", "fx": float(fx), "fy": float(fy)}
        )
    return rows


def _far_stars(rng, n=10):
    """*n* catalog stars 3000-6000 px from the optical axis: outside the visit footprint."""
    rows = []
    for _ in range(n):
        r = rng.uniform(3000.0, 6000.0)
        phi = rng.uniform(0.0, 2.0 * math.pi)
        rows.append(
            {
                "host": -1,
                "x": np.nan,
                "y": np.nan,
                "g": float(rng.uniform(8.0, 20.0)),
                "kind": "far",
                "fx": r * math.cos(phi),
                "fy": r * math.sin(phi),
            }
        )
    return rows


def _proper_motions(rng, rows):
    """``pmra``, ``pmdec`` (mas/yr): mostly below 20, and 500 for detector 0's first unsaturated star."""
    n_all = len(rows)
    pm_amp = rng.uniform(0.0, 20.0, n_all)
    pm_ang = rng.uniform(0.0, 2.0 * math.pi, n_all)
    pmra = pm_amp * np.cos(pm_ang)
    pmdec = pm_amp * np.sin(pm_ang)
    high_pm = next(i for i, r in enumerate(rows) if r["host"] == 0 and r["kind"] == "unsat")
    ang = rng.uniform(0.0, 2.0 * math.pi)
    pmra[high_pm], pmdec[high_pm] = 500.0 * math.cos(ang), 500.0 * math.sin(ang)
    return pmra, pmdec


def _source_ids(rng, n_all):
    """*n_all* unique Gaia-like source ids, in random order."""
    ids = np.unique(rng.integers(3_800_000_000_000_000_000, 3_900_000_000_000_000_000, n_all + 50))
    return rng.permutation(ids)[:n_all].astype(np.int64)


def _more_source_ids(rng, n, taken):
    """*n* more unique Gaia-like source ids, none in *taken*, in random order."""
    ids = np.zeros(0, dtype=np.int64)
    while len(ids) < n:
        new = rng.integers(3_800_000_000_000_000_000, 3_900_000_000_000_000_000, n + 50)
        ids = np.union1d(ids, np.setdiff1d(new, taken))
    return rng.permutation(ids)[:n].astype(np.int64)


def _true_positions(rows, fxs, fys, size):
    """(RA, Dec) at the observation epoch; detector stars exactly through their host's WCS."""
    ra_true, dec_true = focal_to_sky(fxs, fys)
    # exact positions of detector stars through their host WCS (identical model, double precision)
    for det, yaw in DEMO_DETECTORS:
        sel = [i for i, r in enumerate(rows) if r["host"] == det]
        wcs = detector_wcs(detector=det, yaw_deg=yaw, size=size)
        ra_w, dec_w = wcs.all_pix2world([rows[i]["x"] for i in sel], [rows[i]["y"] for i in sel], 0)
        ra_true[sel], dec_true[sel] = ra_w, dec_w
    return ra_true, dec_true


def _catalog_columns(rows, ids, ra_true, dec_true, g_true, pmra, pmdec):
    """The reference catalog's columns: positions moved back to ``REF_EPOCH``, NaN G for kind nan."""
    cosd = np.cos(np.radians(dec_true))
    ra_cat = (ra_true - pmra * _DT_YEARS / 3.6e6 / cosd) % 360.0
    dec_cat = dec_true - pmdec * _DT_YEARS / 3.6e6
    g_cat = np.where([r["kind"] == "nan" for r in rows], np.nan, g_true)
    gaia_flux = 10.0 ** (-0.4 * (g_cat - 25.6874))
    return {
        "source_id": ids,
        "ra": ra_cat,
        "dec": dec_cat,
        "phot_g_mean_mag": g_cat,
        "phot_g_mean_flux": gaia_flux,
        "pmra": pmra,
        "pmdec": pmdec,
        "ref_epoch": np.full(len(rows), REF_EPOCH),
    }


def _stars_near_detector(det, yaw, size, hosted, fxs, fys):
    """Indices and pixel positions of the detector-hosted stars within ``OFF_DETECTOR_MARGIN`` of *det*.

    A star's own detector takes its drawn position; the others, its focal-plane position mapped back.
    """
    p0 = detector_origin(detector=det, yaw_deg=yaw, size=size)
    px, py = focal_to_pixel(fxs, fys, p0=p0, yaw_deg=yaw)
    host = np.array([r["host"] for r in hosted])
    px = np.where(host == det, [r["x"] for r in hosted], px)
    py = np.where(host == det, [r["y"] for r in hosted], py)
    lo, hi = -OFF_DETECTOR_MARGIN, size - 1 + OFF_DETECTOR_MARGIN
    sel = np.nonzero((px >= lo) & (px <= hi) & (py >= lo) & (py <= hi))[0]
    return sel, px[sel], py[sel]


#: Columns of the truth file's STARS and DETECTORS tables.
_TRUTH_STARS = (
    "exposure",
    "detector",
    "source_id",
    "kind",
    "g_mag",
    "catalog_g_mag",
    "flux_adu",
    "x_true",
    "y_true",
    "peak_adu",
    "saturated",
    "on_detector",
    "ra_true",
    "dec_true",
    "pmra",
    "pmdec",
)
_TRUTH_DETECTORS = (
    "exposure",
    "detector",
    "yaw_deg",
    "p0_x",
    "p0_y",
    "centre_fx",
    "centre_fy",
    "sky_a",
    "sky_b",
    "sky_c",
)


def _add_truth(truth, name, det, sel, star_table, catalog):
    """Append one exposure's stars to the STARS columns (lists; *catalog*: per-star arrays by name)."""
    n = len(sel)
    truth["exposure"] += [name] * n
    truth["detector"] += [det] * n
    for key in ("source_id", "kind", "g_mag", "catalog_g_mag"):
        truth[key] += list(catalog[key][sel])
    for key, col in (
        ("flux_adu", "flux"),
        ("x_true", "x"),
        ("y_true", "y"),
        ("peak_adu", "peak_adu"),
        ("saturated", "saturated"),
        ("on_detector", "on_detector"),
    ):
        truth[key] += list(star_table[col])
    for key in ("ra_true", "dec_true", "pmra", "pmdec"):
        truth[key] += list(catalog[key][sel])


def _truth_cards(seed, size, band):
    """The truth file's primary cards: (keyword, value, comment)."""
    return [
        ("SEED", int(seed), "numpy default_rng seed"),
        ("NDET", len(DEMO_DETECTORS), "number of detectors"),
        ("DETSIZE", size, "detector size N (N x N px)"),
        ("BAND", str(band), "filter"),
        ("BORE-RA", BORESIGHT[0], "[deg] boresight RA (CRVAL1)"),
        ("BORE-DEC", BORESIGHT[1], "[deg] boresight Dec (CRVAL2)"),
        ("MJD-OBS", MJD_OBS, "observation epoch (MJD)"),
        ("REFEPOCH", REF_EPOCH, "catalog reference epoch (Julian year)"),
        ("DTYEARS", _DT_YEARS, "[yr] MJD-OBS minus reference epoch"),
        ("PIXSCALE", PIXEL_SCALE, "[arcsec/px] nominal pixel scale"),
        ("DISTK", DISTORTION_K, "u_und = u (1 + DISTK |u|^2), nominal px"),
        ("ZP", ZERO_POINT, "flux_adu = 10**(-0.4 (g - ZP))"),
        ("GAIN", GAIN, "[e-/ADU]"),
        ("RDNOISE", READ_NOISE, "[e-] read noise"),
        ("BKGLEV", BACKGROUND, "[e-] subtracted background level"),
        ("SATLEV", SATURATION, "[ADU] saturation level"),
        ("SKYMAX", SKY_MAX, "[ADU] max |residual sky plane|"),
        ("PSFSIG", PSF_CORE_SIGMA, "[px] Gaussian core sigma"),
        ("PSFCFRAC", PSF_CORE_FRACTION, "core flux fraction"),
        ("PSFWFRAC", PSF_WING_FRACTION, "Moffat wing flux fraction"),
        ("PSFR0", PSF_WING_R0, "[px] Moffat wing r0"),
        ("PSFBETA", PSF_WING_BETA, "Moffat wing beta"),
        ("SPKANG", SPIKE_ANGLE_DEG, "[deg] spike angle in the focal plane"),
        ("SPKAMP", SPIKE_AMPLITUDE, "spike amplitude (unit flux, per px^2)"),
        ("SPKWID", SPIKE_WIDTH, "[px] spike Gaussian width"),
        ("SPKLEN", SPIKE_LENGTH, "[px] spike Lorentzian length"),
        ("SPKTAPER", SPIKE_TAPER, "[px] spike Gaussian taper length"),
        ("SPKFLUX", SPIKE_FLUX, "flux of both spikes"),
        ("GHOSTX", GHOST_OFFSET[0], "[px] ghost focal-plane offset x"),
        ("GHOSTY", GHOST_OFFSET[1], "[px] ghost focal-plane offset y"),
        ("GHOSTSIG", GHOST_SIGMA, "[px] ghost sigma"),
        ("GHOSTPK", GHOST_PEAK, "ghost peak (unit flux, per px^2)"),
        ("RENDTHR", RENDER_THRESHOLD, "[ADU] render cut-off"),
        ("DETSIG", DETECTION_SIGMA, "DETECTED threshold (sigma of sqrt(425))"),
    ]


def _write_truth(path, *, seed, size, band, stars, detectors):
    """The truth file: primary cards, the true PSF, the STARS and DETECTORS tables."""
    primary = fits.PrimaryHDU()
    for key, value, comment in _truth_cards(seed, size, band):
        primary.header[key] = (value, comment)
    psf = true_psf_stamp((275, 275))
    psf_hdu = fits.ImageHDU(psf, name="PSF")
    psf_hdu.header["CENTERX"] = (137, "star centre, 0-based")
    psf_hdu.header["CENTERY"] = (137, "star centre, 0-based")
    psf_hdu.header["COMMENT"] = "psf_focal(x - 137, y - 137), focal-plane frame, unit total flux"
    stars_hdu = fits.BinTableHDU(Table(stars), name="STARS")
    det_hdu = fits.BinTableHDU(Table(detectors), name="DETECTORS")
    with atomic_output(path) as tmp:
        fits.HDUList([primary, psf_hdu, stars_hdu, det_hdu]).writeto(tmp)


def read_true_psf(path):
    """The true PSF of a demo truth file (HDU ``PSF``) and the pixel of its star.

    Parameters
    ----------
    path : str or os.PathLike
        The ``truth.fits`` of :func:`simulate_demo`.

    Returns
    -------
    image : numpy.ndarray
        float64, unit total flux, in the focal-plane frame.
    center : (int, int)
        ``(x, y)`` of the star's pixel (``CENTERX``, ``CENTERY``).

    Raises
    ------
    brightstamps.errors.InputError
        One line naming the file: not there, not FITS, or without a 2-D ``PSF`` HDU.
    """
    with open_fits(path, what="demo truth file") as hdul:
        if "PSF" not in hdul or hdul["PSF"].data is None or hdul["PSF"].data.ndim != 2:
            raise InputError(f"demo truth file {path}: no 2-D PSF HDU")
        hdu = hdul["PSF"]
        image = np.array(hdu.data, dtype=np.float64)
        ny, nx = image.shape
        center = (
            int(hdu.header.get("CENTERX", (nx - 1) // 2)),
            int(hdu.header.get("CENTERY", (ny - 1) // 2)),
        )
    return image, center


def main(argv=None):
    """Command line: ``python -m brightstamps.simulate OUTDIR [--seed N] [--detector-size N]``.

    The options default to the config schema's ``demo`` fields, as the rule ``simulate_demo``.
    """
    from .configref import schema_defaults

    demo = schema_defaults()["demo"]
    parser = argparse.ArgumentParser(
        prog="python -m brightstamps.simulate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("outdir", help="output directory")
    parser.add_argument("--seed", type=int, default=demo["seed"], help="random seed (default: %(default)s)")
    parser.add_argument(
        "--detector-size",
        type=int,
        default=demo["detector_size"],
        help="detector size N (default: %(default)s)",
    )
    parser.add_argument(
        "--n-bright",
        type=int,
        default=demo["n_bright"],
        help="saturated bright stars per detector (default: %(default)s)",
    )
    parser.add_argument(
        "--n-faint", type=int, default=demo["n_faint"], help="faint stars per detector (default: %(default)s)"
    )
    parser.add_argument(
        "--n-field", type=int, default=demo["n_field"], help="field stars per detector (default: %(default)s)"
    )
    parser.add_argument("--band", default="r", help="filter (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.detector_size < 64:
        parser.error("--detector-size must be at least 64")
    result = simulate_demo(
        args.outdir,
        seed=args.seed,
        detector_size=args.detector_size,
        n_bright=args.n_bright,
        n_faint=args.n_faint,
        n_field=args.n_field,
        band=args.band,
    )
    for path in result["paths"]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
