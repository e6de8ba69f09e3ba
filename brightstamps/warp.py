"""Warping: resample each cut-out onto the common distortion-free stamp grid, star on the centre.

For output pixel ``p`` (before rotation) the cut-out is sampled at LSST's
``s = T^-1(T(c) + d)``, ``d = p - centre``, where ``c`` is the star's pixel centre and ``T`` the
map to the distortion-free frame. The distortion-free frame is LSST's TAN_PIXELS built from the
WCS alone: gnomonic coordinates about the boresight, scaled back to pixels by the WCS Jacobian
at the boresight, so its axes are parallel to the detector and its scale is the nominal one.
``T^-1`` is solved exactly (with the WCS) on a 5 x 5 grid of nodes over the stamp and fitted by
a quadratic in ``d`` per stamp, ``s = c + A d + Q (dx^2, dx dy, dy^2)``: the linear part ``A`` is
the local linear map at the star and ``Q`` the curvature of the distortion, together exact to
about a thousandth of a pixel for smooth distortions. ``A`` and ``Q`` go into the STARS table.

Resampling follows afw's ``warpImage``: separable kernel weights normalized to unit sum, a
flux-conserving factor ``|det A|``, variance with squared weights, mask bits OR-ed over the full
kernel footprint, and NaN / NO_DATA (variance +inf) wherever the footprint leaves the cut-out.
Orientation: with ``orientation="quarter_turns"`` (LSST) each stamp is then turned by the
detector's number of quarter turns (``np.rot90(k=-n)``). With ``orientation="radial"`` (LSST's 2026
successor) a rotation is composed into each star's map instead, ``d -> R(phi) d``, so there is still
one resampling: ``phi`` is the star's polar angle about the boresight in the distortion-free frame,
and after the warp the direction pointing away from the boresight is +x (the boresight lies towards
-x, to the left of the centre) for every star. The boresight is given in ICRS (configuration,
header cards) and converted to the WCS's own frame (FK5, FK4, galactic: :mod:`brightstamps.frames`);
the distortion-free frame does not depend on the frame of the WCS, only on the boresight's place on
the sky. The resampling runs in a compiled kernel
(``_warp_kernel``, numba) with tabulated Lanczos weights; the tests hold it to an exact-weight
numpy implementation (``tests/warp_reference.py``).
"""

import logging

import numpy as np
from astropy.wcs import WCS

from .config import model_stamp_size
from .errors import InputError
from .frames import frame_name, from_icrs, to_icrs, wcs_frame
from .masks import ensure_planes
from .notices import notice
from .stampsfile import BLOCK, StampStream

__all__ = [
    "KERNELS",
    "ORIENTATIONS",
    "Boresight",
    "boresight_of",
    "boresight_polar_angles",
    "distortion_free_maps",
    "kernel_weights",
    "model_stamp_size",
    "nb90_rotations",
    "rotate_maps",
    "warp_cutout",
    "warp_stamps",
]

log = logging.getLogger(__name__)

#: Kernel name -> half-width n (the kernel covers 2n source pixels per axis).
KERNELS = {"bilinear": 1, "lanczos3": 3, "lanczos4": 4, "lanczos5": 5}

#: Stamp orientation modes.
ORIENTATIONS = ("quarter_turns", "radial")


def nb90_rotations(yaw_deg):
    """LSST's number of quarter turns: ``argmin_k |k*90 - yaw|`` for k = 0..3, not wrapped.

    Examples
    --------
    >>> [nb90_rotations(y) for y in (0, 45, 89.9, 180, 270, -90, 359.9)]
    [0, 0, 1, 2, 3, 0, 3]
    """
    yaw = np.radians(float(yaw_deg))
    return int(np.argmin(np.abs(np.arange(4) * np.pi / 2 - yaw)))


def kernel_weights(frac, kernel):
    """Normalized 1-D weights of *kernel* for fractional offsets *frac*.

    Parameters
    ----------
    frac : numpy.ndarray
        Fractional source positions in [0, 1), shape ``(P,)``.
    kernel : str
        One of :data:`KERNELS`.

    Returns
    -------
    weights : numpy.ndarray
        ``(P, 2n)`` weights for source offsets ``k = -(n-1) .. n``, each row summing to 1.
    raw_sum : numpy.ndarray
        ``(P,)`` sums before normalization.
    """
    n = KERNELS[kernel]
    k = np.arange(-(n - 1), n + 1, dtype=np.float64)
    x = k[None, :] - np.asarray(frac, dtype=np.float64)[:, None]
    if kernel == "bilinear":
        w = np.maximum(0.0, 1.0 - np.abs(x))
    else:
        w = np.sinc(x) * np.sinc(x / n)
    raw = w.sum(axis=1)
    return w / raw[:, None], raw


class Boresight(tuple):
    """A boresight ``(ra, dec)`` in ICRS degrees that says where it came from.

    A 2-tuple (unpacks and compares as ``(ra, dec)``) with the attributes ``source``, the text
    of the stamps' ``BORESRC`` card, and ``fallback``, true when it is the WCS reference point
    because the header has no usable boresight cards.

    Examples
    --------
    >>> b = Boresight(10.0, -5.0, "config boresight.ra/dec")
    >>> b == (10.0, -5.0), b.source, b.fallback
    (True, 'config boresight.ra/dec', False)
    """

    def __new__(cls, ra, dec, source, *, fallback=False):
        """A boresight at (*ra*, *dec*) degrees that came from *source*."""
        self = super().__new__(cls, (float(ra), float(dec)))
        self.source = str(source)
        self.fallback = bool(fallback)
        return self

    def __getnewargs_ex__(self):
        return (self[0], self[1], self.source), {"fallback": self.fallback}


def boresight_of(wcs, metadata, *, ra_key, dec_key, ra_unit, fixed=None, source=""):
    """Boresight (ra, dec) in ICRS degrees: *fixed*, else the header cards, else the WCS reference point.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The exposure's WCS (its ``crval``, converted to ICRS, is the last resort).
    metadata : astropy.io.fits.Header or dict or None
        Exposure header.
    ra_key, dec_key : str
        Header keywords of the boresight (``boresight.ra_key``, ``dec_key``; DECam: TELRA/TELDEC).
    ra_unit : {'deg', 'hourangle'}
        ``boresight.ra_unit``: unit of a string (e.g. sexagesimal) RA card; numeric cards are
        degrees, Dec is degrees.
    fixed : tuple of float, optional
        ``(ra, dec)`` in degrees from the configuration; overrides the header.
    source : str
        File named in errors.

    Returns
    -------
    Boresight
        ``(ra, dec)``; its ``source`` says which of the three it is (``config boresight.ra/dec``,
        ``header <ra_key>,<dec_key>`` or ``WCS CRVAL (...)``) and ``fallback`` whether it is CRVAL.

    Examples
    --------
    >>> ra, dec = boresight_of(None, {"TELRA": "07:20:54.0", "TELDEC": "-23:47:09"}, ra_key="TELRA",
    ...                        dec_key="TELDEC", ra_unit="hourangle")
    >>> round(ra, 9), round(dec, 9)
    (110.225, -23.785833333)
    """
    if fixed is not None:
        return Boresight(fixed[0], fixed[1], "config boresight.ra/dec")
    why = f"no {ra_key},{dec_key} cards"
    if metadata is not None and ra_key in metadata and dec_key in metadata:
        ra = _angle_deg(metadata[ra_key], ra_unit, key=ra_key, source=source)
        dec = _angle_deg(metadata[dec_key], "deg", key=dec_key, source=source)
        if np.isfinite(ra) and np.isfinite(dec):
            return Boresight(ra, dec, f"header {ra_key},{dec_key}")
        why = f"{ra_key},{dec_key} not finite"
    ra, dec = (float(v) for v in wcs.wcs.crval)
    frame = wcs_frame(wcs, source=source)
    if frame is not None:  # CRVAL is in the WCS's frame; the boresight is ICRS
        (ra,), (dec,) = to_icrs([ra], [dec], frame)
    return Boresight(ra, dec, f"WCS CRVAL ({why})", fallback=True)


def _angle_deg(value, unit, *, key, source):
    """A header angle in degrees: numbers are degrees, strings are parsed by astropy in *unit*."""
    if not isinstance(value, str):
        return float(value)
    from astropy.coordinates import Angle

    try:
        return float(Angle(value.strip(), unit=unit).degree)
    except ValueError:
        raise InputError(f"{source}: header card {key} = {value!r} is not an angle in {unit}") from None


def _gnomonic(boresight):
    proj = WCS(naxis=2)
    proj.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    proj.wcs.crval = boresight
    proj.wcs.crpix = [0.0, 0.0]
    proj.wcs.cdelt = [1.0, 1.0]
    return proj


def _jacobians(wcs, proj, points, h=1.0):
    """d(xi, eta)/d(x, y) at each point by central differences, shape (P, 2, 2)."""
    p = np.asarray(points, dtype=np.float64)
    offs = np.array([[h, 0], [-h, 0], [0, h], [0, -h]])
    probe = (p[:, None, :] + offs[None]).reshape(-1, 2)
    world = wcs.all_pix2world(probe, 0)
    plane = proj.wcs_world2pix(world, 1).reshape(-1, 4, 2)  # crpix 0, origin 1: (xi, eta) in deg
    dx = (plane[:, 0] - plane[:, 1]) / (2 * h)
    dy = (plane[:, 2] - plane[:, 3]) / (2 * h)
    return np.stack([dx, dy], axis=-1)  # [..., i, j] = d(plane_i)/d(pixel_j)


def _tan_pixels(wcs, proj, j0_inv, points):
    """LSST's TAN_PIXELS coordinates T(p) = J0^-1 (xi, eta)(p) of pixel positions (P, 2)."""
    plane = proj.wcs_world2pix(wcs.all_pix2world(points, 0), 1)
    return plane @ j0_inv.T


def _frame(wcs, boresight):
    """The gnomonic projection about the boresight and its pixel Jacobian J0 there (and J0^-1).

    The projection is in the WCS's own frame, about the (ICRS) boresight converted to it: the
    tangent planes of two frames about one point differ by a rotation, which J0 takes out.
    """
    frame = wcs_frame(wcs)
    if frame is not None:
        (lon,), (lat,) = from_icrs([boresight[0]], [boresight[1]], frame)
        boresight = (float(lon), float(lat))
    proj = _gnomonic(boresight)
    crval = np.asarray(wcs.wcs.crval, dtype=np.float64)
    p0 = wcs.wcs.crpix - 1.0  # the boresight's pixel for TAN(-SIP) about the boresight, not for TPV
    if not (
        np.allclose(crval, boresight, rtol=0, atol=1e-10)
        and np.allclose(wcs.all_pix2world([p0], 0)[0], boresight, rtol=0, atol=1e-10)
    ):
        p0 = wcs.all_world2pix([boresight], 0, quiet=True)[0]
    if not np.isfinite(p0).all():
        raise InputError(
            "the WCS cannot be inverted at the boresight; cannot define the distortion-free frame"
        )
    j0 = _jacobians(wcs, proj, p0[None])[0]
    return proj, j0, np.linalg.inv(j0)


def boresight_polar_angles(wcs, centers, *, boresight):
    """Polar angle of each star about the boresight in the distortion-free (TAN_PIXELS) frame.

    The boresight is the origin of that frame, so the angle is ``atan2(T_y(c), T_x(c))``: the
    direction pointing from the boresight to the star, counter-clockwise from the detector's +x axis.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS of the exposure, in any frame :func:`brightstamps.frames.wcs_frame` accepts.
    centers : numpy.ndarray
        ``(N, 2)`` pixel centres (x, y).
    boresight : tuple of float
        ``(ra, dec)`` in ICRS degrees.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` angles in radians, in (-pi, pi].
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    if not len(centers):
        return np.zeros(0)
    proj, _, j0_inv = _frame(wcs, boresight)
    t = _tan_pixels(wcs, proj, j0_inv, centers)
    return np.arctan2(t[:, 1], t[:, 0])


def rotate_maps(affine, quadratic, angles):
    """Compose the rotation ``d -> R(angle) d`` into maps ``s = c + A d + Q q(d)``.

    With ``R = [[cos, -sin], [sin, cos]]`` the new map is ``s = c + (A R) d + (Q M) q(d)``, where
    ``q(R d) = M q(d)`` for ``q(d) = (dx^2, dx dy, dy^2)``. Output +x then points along *angle* in
    the unrotated frame.

    Parameters
    ----------
    affine : numpy.ndarray
        ``(N, 2, 2)`` linear parts.
    quadratic : numpy.ndarray
        ``(N, 2, 3)`` quadratic parts.
    angles : numpy.ndarray
        ``(N,)`` rotation angles in radians.

    Returns
    -------
    tuple of numpy.ndarray
        Rotated ``(N, 2, 2)`` and ``(N, 2, 3)`` parts.
    """
    c, s = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (N, 2, 2)
    m = np.stack(
        [
            np.stack([c * c, -2 * c * s, s * s], -1),
            np.stack([c * s, c * c - s * s, -c * s], -1),
            np.stack([s * s, 2 * c * s, c * c], -1),
        ],
        -2,
    )  # (N, 3, 3)
    return affine @ rot, quadratic @ m


def distortion_free_maps(wcs, centers, *, boresight, half_size, iterations=6):
    """Per-star maps from output-stamp offsets to exposure pixels, ``s = c + A d + Q q(d)``.

    ``A = J(c)^-1 J0`` is the exact local linear map, with ``J`` the Jacobian of the gnomonic
    coordinates about the boresight with respect to pixels, at the star (``c``) and at the
    boresight's pixel (``J0``). ``Q`` (the coefficients of ``q(d) = (dx^2, dx dy, dy^2)``) is
    fitted to the exact ``T^-1(T(c) + d)`` on a 5 x 5 grid of nodes spanning the stamp.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS of the exposure (any projection and distortion astropy supports, in any
        frame :func:`brightstamps.frames.wcs_frame` accepts).
    centers : numpy.ndarray
        ``(N, 2)`` pixel centres (x, y).
    boresight : tuple of float
        ``(ra, dec)`` in ICRS degrees.
    half_size : tuple of int
        Half-widths (x, y) of the output stamp: the nodes span ``[-half, +half]``.
    iterations : int
        Fixed-point iterations of the inversion (each gains ~3 decimals).

    Returns
    -------
    affine : numpy.ndarray
        ``(N, 2, 2)`` linear part ``A``.
    quadratic : numpy.ndarray
        ``(N, 2, 3)`` second-order part ``Q``.
    """
    proj, j0, j0_inv = _frame(wcs, boresight)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    n = len(centers)
    jc = _jacobians(wcs, proj, centers)
    affine = np.linalg.solve(jc, np.broadcast_to(j0, jc.shape))
    # exact inverse on nodes: fixed point p <- p + A (target - T(p)), contracting like the
    # change of the distortion across the stamp (~1e-3 per iteration)
    gx, gy = np.meshgrid(
        np.linspace(-half_size[0], half_size[0], 5), np.linspace(-half_size[1], half_size[1], 5)
    )
    d = np.column_stack([gx.ravel(), gy.ravel()])  # (M, 2)
    target = _tan_pixels(wcs, proj, j0_inv, centers)[:, None, :] + d[None]  # (N, M, 2)
    p = centers[:, None, :] + np.einsum("nij,mj->nmi", affine, d)
    for _ in range(iterations):
        t = _tan_pixels(wcs, proj, j0_inv, p.reshape(-1, 2)).reshape(n, -1, 2)
        p = p + np.einsum("nij,nmj->nmi", affine, target - t)
    if not np.isfinite(p).all():
        raise InputError("the WCS cannot be inverted over a stamp; cannot warp")
    residual = p - centers[:, None, :] - np.einsum("nij,mj->nmi", affine, d)
    basis = np.column_stack([d[:, 0] ** 2, d[:, 0] * d[:, 1], d[:, 1] ** 2])  # (M, 3)
    coef, *_ = np.linalg.lstsq(basis, residual.transpose(1, 0, 2).reshape(len(d), -1), rcond=None)
    quadratic = coef.reshape(3, n, 2).transpose(1, 2, 0)  # (N, 2, 3)
    return affine, quadratic


def warp_cutout(image, mask, variance, *, center, affine, quadratic=None, out_shape, kernel, no_data_bit):
    """Resample one cut-out so that *center* lands on the central pixel of *out_shape*.

    Parameters
    ----------
    image, mask, variance : numpy.ndarray
        ``(h, w)`` cut-out planes.
    center : tuple of float
        Star centre ``(x, y)`` in cut-out pixel coordinates.
    affine : numpy.ndarray
        ``(2, 2)`` linear map from output-pixel offsets ``d`` to cut-out pixel offsets.
    quadratic : numpy.ndarray, optional
        ``(2, 3)`` coefficients of ``(dx^2, dx dy, dy^2)`` added to the offsets.
    out_shape : tuple of int
        ``(H, W)`` of the output stamp (odd sizes put the star on ``(W//2, H//2)``).
    kernel : str
        One of :data:`KERNELS`.
    no_data_bit : int
        Bit value of NO_DATA.

    Returns
    -------
    tuple of numpy.ndarray
        Warped image (float32), mask (int32) and variance (float32).
    """
    from ._warp_kernel import footprint_or, warp_plane_set  # numba: imported by the warping step only

    n = KERNELS[kernel]
    out_img = np.empty(out_shape, dtype=np.float32)
    out_var = np.empty(out_shape, dtype=np.float32)
    out_msk = np.empty(out_shape, dtype=np.int32)
    mask = np.ascontiguousarray(mask, dtype=np.int32)
    dilated = mask if n == 1 else footprint_or(mask, n)
    quadratic = np.zeros((2, 3)) if quadratic is None else np.asarray(quadratic, dtype=np.float64)
    warp_plane_set(
        np.ascontiguousarray(image, dtype=np.float32),
        np.ascontiguousarray(variance, dtype=np.float32),
        mask,
        dilated,
        float(center[0]),
        float(center[1]),
        np.asarray(affine, dtype=np.float64),
        quadratic,
        out_img,
        out_var,
        out_msk,
        n,
        _lanczos_table(n),
        no_data_bit,
    )
    return out_img, out_msk, out_var


def _lanczos_table(n):
    """Tabulated normalized Lanczos-n weights (built once per process and kernel)."""
    if n not in _TABLES:
        from ._warp_kernel import lanczos_table

        _TABLES[n] = lanczos_table(n) if n > 1 else np.zeros((2, 2))  # bilinear: no table
    return _TABLES[n]


_TABLES = {}


def warp_stamps(
    cutouts,
    wcs,
    *,
    kernel,
    do_apply_transform,
    model_stamp_buffer,
    nb90_rots,
    orientation,
    boresight,
    block=BLOCK,
    source="",
):
    """Step 4 (warping): resample every cut-out onto the common grid and orient it.

    Parameters
    ----------
    cutouts : brightstamps.stampsfile.Stamps
        Cut-outs from :func:`brightstamps.extract.extract_stamps` (in memory, or memory-mapped
        by ``read_stamps(memmap=True)``).
    wcs : astropy.wcs.WCS
        The exposure's WCS.
    kernel : str
        One of :data:`KERNELS`.
    do_apply_transform : bool
        Remove the optical distortion (LSST ``doApplyTransform``); False gives a pure shift.
    model_stamp_buffer : float
        Output size = ``model_stamp_size(cut-out size, buffer)``.
    nb90_rots : int
        Quarter turns applied after warping (:func:`nb90_rotations` of the detector's yaw); used
        by ``orientation="quarter_turns"`` only.
    orientation : {'quarter_turns', 'radial'}
        ``quarter_turns`` (LSST): turn every stamp by *nb90_rots* after warping. ``radial`` (LSST
        2026): rotate each stamp inside the warp so that the boresight lies towards -x (the
        outward radial direction is +x); STARS gains ``orient_angle`` (deg), the star's polar
        angle about the boresight by which its stamp was turned.
    boresight : Boresight or tuple of float
        ``(ra, dec)`` in ICRS degrees (:func:`boresight_of`). A :class:`Boresight` says where it
        came from (header ``BORESRC``); when it is the WCS reference point and the warp uses it,
        a ``boresight_fallback`` notice is logged.
    block : int
        Stamps read and warped at a time.
    source : str
        The exposure's file, named in the notice.

    Returns
    -------
    brightstamps.stampsfile.StampStream
        Warped, rotated stamps, made as the stream is consumed. STARS gains the map from output
        offsets ``d`` (before any quarter turns; radial rotations are part of it) to exposure pixels, ``s = (x, y) + A d + Q (dx^2, dx dy, dy^2)``: ``warp_a11 .. warp_a22``
        (A) and ``warp_qx_xx .. warp_qy_yy`` (Q), and ``rel_area`` = ``|det A|``. The header
        records the boresight (``BORERA``, ``BOREDEC``, ICRS), where it came from (``BORESRC``)
        and, for a WCS not in ICRS, the WCS's frame (``WCSFRAME``).
    """
    if kernel not in KERNELS:
        raise InputError(f"warping_kernel: unknown kernel {kernel!r}; use one of {sorted(KERNELS)}")
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation: unknown mode {orientation!r}; use one of {list(ORIENTATIONS)}")
    radial = orientation == "radial"
    if radial:
        nb90_rots = 0  # the rotation is in the map
    ch, cw = cutouts.stamp_shape
    out_w, out_h = model_stamp_size((cw, ch), model_stamp_buffer)
    n = len(cutouts)
    stars = cutouts.stars.copy()
    centers = (
        np.column_stack([np.asarray(stars["x"], float), np.asarray(stars["y"], float)])
        if n
        else np.zeros((0, 2))
    )
    if not isinstance(boresight, Boresight):
        boresight = Boresight(boresight[0], boresight[1], "given to warp_stamps")
    if boresight.fallback and n and (do_apply_transform or radial):
        notice(
            log,
            "boresight_fallback",
            "%s: the boresight is the %s, RA %.6f Dec %.6f: if that is not the optical axis (e.g. it "
            "is the detector's own centre), the distortion-free frame's scale and the radial angles are "
            "wrong; name the header's boresight cards in boresight.ra_key/dec_key, or give "
            "boresight.ra/dec",
            source or "the exposure",
            boresight.source,
            boresight[0],
            boresight[1],
        )
    frame = wcs_frame(wcs, source=source)
    if do_apply_transform and n:
        half = (out_w // 2, out_h // 2)
        if radial:  # rotated offsets reach the circumscribed circle: fit the map over all of it
            half = (int(np.ceil(np.hypot(*half))),) * 2
        maps, quads = distortion_free_maps(wcs, centers, boresight=boresight, half_size=half)
    else:
        maps = np.broadcast_to(np.eye(2), (n, 2, 2)).copy()
        quads = np.zeros((n, 2, 3))
    if radial:
        angles = boresight_polar_angles(wcs, centers, boresight=boresight)
        maps, quads = rotate_maps(maps, quads, angles)
        stars["orient_angle"] = np.degrees(angles)
    planes = ensure_planes(cutouts.mask_planes, ["NO_DATA"])
    no_data = 1 << planes["NO_DATA"]
    rot_shape = (out_h, out_w) if nb90_rots % 2 == 0 else (out_w, out_h)
    local = (
        centers - np.column_stack([np.asarray(stars["cutout_x0"]), np.asarray(stars["cutout_y0"])])
        if n
        else centers
    )
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        stars[f"warp_a{i + 1}{j + 1}"] = maps[:, i, j].astype(np.float64)
    for i, axis in enumerate("xy"):
        for j, term in enumerate(("xx", "xy", "yy")):
            stars[f"warp_q{axis}_{term}"] = quads[:, i, j].astype(np.float64)
    stars["rel_area"] = np.abs(np.linalg.det(maps)) if n else np.zeros(0)
    header = dict(cutouts.header)
    header.update(
        {
            "STAGE": "warped",
            "KERNEL": kernel,
            **({"ORIENT": ("radial", "stamps turned so the boresight lies towards -x")} if radial else {}),
            # comments of at most 47 characters: a longer one is truncated, with a warning in the log
            "NB90ROT": (nb90_rots, "quarter turns after warping (np.rot90 k=-n)"),
            "TRANSFRM": (bool(do_apply_transform), "optical distortion removed"),
            "BORERA": (boresight[0], "boresight RA, distortion-free frame [deg]"),
            "BOREDEC": (boresight[1], "boresight Dec, distortion-free frame [deg]"),
            "BORESRC": (boresight.source, "BORERA/BOREDEC origin"),
            # only for a WCS not in ICRS, so that ordinary headers keep their cards
            **(
                {"WCSFRAME": (frame_name(frame), "WCS frame; BORE*, STARS ra/dec are ICRS")}
                if frame is not None
                else {}
            ),
            "CENTERX": (rot_shape[1] // 2, "0-based x of the star's pixel"),
            "CENTERY": (rot_shape[0] // 2, "0-based y of the star's pixel"),
        }
    )
    log.info(
        "warping %d stamps to %dx%d with %s, %s",
        n,
        out_w,
        out_h,
        kernel,
        "radial orientation" if radial else f"{nb90_rots} quarter turns",
    )

    def blocks():
        start = 0
        for cut_img, cut_msk, cut_var in cutouts.blocks(block):
            m = len(cut_img)
            image = np.empty((m,) + rot_shape, dtype=np.float32)
            mask = np.empty((m,) + rot_shape, dtype=np.int32)
            variance = np.empty((m,) + rot_shape, dtype=np.float32)
            for i, k in enumerate(range(start, start + m)):
                img, msk, var = warp_cutout(
                    cut_img[i],
                    cut_msk[i],
                    cut_var[i],
                    center=local[k],
                    affine=maps[k],
                    quadratic=quads[k],
                    out_shape=(out_h, out_w),
                    kernel=kernel,
                    no_data_bit=no_data,
                )
                image[i] = np.rot90(img, k=-nb90_rots)
                mask[i] = np.rot90(msk, k=-nb90_rots)
                variance[i] = np.rot90(var, k=-nb90_rots)
            start += m
            yield image, mask, variance

    return StampStream(stars, planes, header, rot_shape, blocks())
