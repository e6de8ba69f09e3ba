"""Stamp orientation: camera tables, boresight cards, and the radial alignment composed into the warp."""

import logging

import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps import simulate as sim
from brightstamps.camera import detector_yaws, load_camera
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.notices import NOTICE_LINE
from brightstamps.stampsfile import Stamps
from brightstamps.warp import (
    boresight_of,
    boresight_polar_angles,
    distortion_free_maps,
    nb90_rotations,
    rotate_maps,
    warp_cutout,
    warp_stamps,
)

OPTIONS = {"kernel": "lanczos3", "do_apply_transform": True, "model_stamp_buffer": 1.1}
BORESIGHT_KEYS = schema_defaults()["boresight"]  # the config's boresight cards when not set
FEATURE_OFFSET = 12.0  # px from the star towards the boresight


def _blob(shape, x, y, sigma=1.5):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)).astype(np.float32)


def _cutouts(centers, images, size):
    corners = np.trunc(centers - (size - 1) / 2).astype(np.int64)
    stars = Table(
        {"x": centers[:, 0], "y": centers[:, 1], "cutout_x0": corners[:, 0], "cutout_y0": corners[:, 1]}
    )
    n = len(centers)
    return Stamps(
        np.asarray(images, np.float32),
        np.zeros((n, size, size), np.int32),
        np.ones((n, size, size), np.float32),
        stars,
        dict(LSST_MASK_PLANES),
    ), corners


def _centroid(img, x, y, half=4):
    """Flux-weighted centroid (x, y) in a box around the integer pixel (x, y)."""
    box = img[y - half : y + half + 1, x - half : x + half + 1].astype(np.float64)
    yy, xx = np.mgrid[y - half : y + half + 1, x - half : x + half + 1]
    return (box * xx).sum() / box.sum(), (box * yy).sum() / box.sum()


@pytest.mark.parametrize(("detector", "yaw"), sim.DEMO_DETECTORS)
def test_radial_warp_puts_a_feature_on_the_boresight_side_at_minus_x_for_every_star(detector, yaw):
    """A blob 12 px from each star towards the boresight lands 12 px left of the stamp centre."""
    size = 2048
    wcs = sim.detector_wcs(detector=detector, yaw_deg=yaw, size=size)
    p0 = sim.detector_origin(detector=detector, yaw_deg=yaw, size=size)  # boresight pixel: the known answer
    centers = np.array([[300.3, 400.6], [1700.2, 350.8], [1024.5, 1800.1], [200.7, 1650.4]])
    towards = (np.asarray(p0) - centers) / np.hypot(*(np.asarray(p0) - centers).T)[:, None]
    n, cut = len(centers), 61
    images = []
    for c, u in zip(centers, towards, strict=True):
        corner = np.trunc(c - 30)
        fx, fy = c + FEATURE_OFFSET * u - corner  # radial distortion keeps the direction to the axis
        images.append(_blob((cut, cut), fx, fy))
    cutouts, _ = _cutouts(centers, images, cut)
    out = warp_stamps(
        cutouts, wcs, nb90_rots=nb90_rotations(yaw), orientation="radial", boresight=sim.BORESIGHT, **OPTIONS
    ).collect()
    assert out.header["ORIENT"][0] == "radial" and out.header["NB90ROT"][0] == 0  # (value, comment)
    cx, cy = out.header["CENTERX"][0], out.header["CENTERY"][0]
    for k in range(n):
        x, y = _centroid(out.image[k], round(cx - FEATURE_OFFSET), cy)
        assert abs(x - (cx - FEATURE_OFFSET)) < 0.1 and abs(y - cy) < 0.1, (k, x, y)
    # the recorded angle is the star's polar angle about the boresight (direction boresight -> star)
    expected = np.degrees(np.arctan2(-towards[:, 1], -towards[:, 0]))
    assert_allclose(out.stars["orient_angle"], expected, atol=0.05)
    assert np.ptp(out.stars["orient_angle"]) > 30  # the stars do sit at different polar angles


def test_quarter_turns_are_the_plain_warp_turned_and_unchanged_by_the_radial_option():
    wcs = sim.detector_wcs(detector=1, yaw_deg=90.0, size=2048)
    rng = np.random.default_rng(5)
    centers = rng.uniform(200, 1800, size=(3, 2))
    cutouts, corners = _cutouts(centers, rng.normal(size=(3, 61, 61)), 61)
    out = warp_stamps(
        cutouts,
        wcs,
        nb90_rots=1,
        orientation="quarter_turns",
        boresight=boresight_of(wcs, {}, **BORESIGHT_KEYS),
        **OPTIONS,
    ).collect()
    assert "ORIENT" not in out.header and "orient_angle" not in out.stars.colnames
    maps, quads = distortion_free_maps(wcs, centers, boresight=sim.BORESIGHT, half_size=(33, 33))
    for k in range(3):
        img, _, _ = warp_cutout(
            cutouts.image[k],
            cutouts.mask[k],
            cutouts.variance[k],
            center=centers[k] - corners[k],
            affine=maps[k],
            quadratic=quads[k],
            out_shape=(67, 67),
            kernel="lanczos3",
            no_data_bit=1 << LSST_MASK_PLANES["NO_DATA"],
        )
        assert_array_equal(out.image[k], np.rot90(img, k=-1))


def test_rotated_map_is_the_unrotated_map_composed_with_the_rotation():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 2, 2))
    q = rng.normal(size=(4, 2, 3)) * 1e-3
    angles = np.array([0.3, -2.0, np.pi / 2, 3.0])
    ar, qr = rotate_maps(a, q, angles)

    def apply(a1, q1, d):
        return a1 @ d + q1 @ np.array([d[0] ** 2, d[0] * d[1], d[1] ** 2])

    for k, phi in enumerate(angles):
        rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
        for d in rng.normal(scale=40, size=(6, 2)):
            assert_allclose(apply(ar[k], qr[k], d), apply(a[k], q[k], rot @ d), rtol=1e-12, atol=1e-9)


def test_a_quarter_turn_composed_into_the_map_equals_turning_the_warped_stamp():
    rng = np.random.default_rng(4)
    img = rng.normal(size=(61, 61)).astype(np.float32)
    msk = np.zeros(img.shape, np.int32)
    var = np.ones(img.shape, np.float32)
    a = np.array([[1.01, 0.02], [-0.01, 0.99]])
    q = np.array([[1e-4, 0, 0], [0, 2e-4, 0]])
    options = {"center": (30.3, 29.7), "out_shape": (45, 45), "kernel": "lanczos3", "no_data_bit": 256}
    plain, _, _ = warp_cutout(img, msk, var, affine=a, quadratic=q, **options)
    ar, qr = rotate_maps(a[None], q[None], np.array([np.pi / 2]))
    turned, _, _ = warp_cutout(img, msk, var, affine=ar[0], quadratic=qr[0], **options)
    good = np.isfinite(turned)
    assert good.sum() > 200
    assert_allclose(turned[good], np.rot90(plain, k=1)[good], atol=1e-5)


def test_polar_angle_of_a_pure_tan_wcs_is_the_pixel_angle_about_the_boresight_pixel():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [-500.0, 301.0]  # boresight at 0-based pixel (-501, 300)
    wcs.wcs.cd = [[-5.5e-5, 0.0], [0.0, 5.5e-5]]
    centers = np.array([[-501.0 + 300, 300.0], [-501.0, 300.0 + 200], [-501.0 - 100, 300.0 - 100]])
    angles = np.degrees(boresight_polar_angles(wcs, centers, boresight=(150.0, 2.0)))
    assert_allclose(angles, [0.0, 90.0, -135.0], atol=1e-6)


def test_boresight_from_configurable_cards_and_fixed_values():
    header = {"TELRA": "07:20:54.319", "TELDEC": "23:47:09.398", "BORE-RA": 1.0, "BORE-DEC": 2.0}
    ra, dec = boresight_of(None, header, ra_key="TELRA", dec_key="TELDEC", ra_unit="hourangle")
    assert_allclose(
        [ra, dec], [(7 + 20 / 60 + 54.319 / 3600) * 15, 23 + 47 / 60 + 9.398 / 3600], rtol=0, atol=1e-9
    )
    assert boresight_of(None, header, **BORESIGHT_KEYS) == (1.0, 2.0)
    assert boresight_of(None, header, fixed=(3.0, 4.0), **BORESIGHT_KEYS) == (3.0, 4.0)
    with pytest.raises(InputError, match="x.fits: header card TELRA"):
        boresight_of(
            None,
            {"TELRA": "noon", "TELDEC": 1.0},
            ra_key="TELRA",
            dec_key="TELDEC",
            ra_unit="deg",
            source="x.fits",
        )


def test_the_boresight_says_where_it_came_from():
    wcs = sim.detector_wcs(detector=0, yaw_deg=0.0, size=300)
    header = {"TELRA": "07:20:54.319", "TELDEC": "23:47:09.398"}
    fixed = boresight_of(wcs, header, fixed=(3.0, 4.0), **BORESIGHT_KEYS)
    assert fixed == (3.0, 4.0) and fixed.source == "config boresight.ra/dec" and not fixed.fallback
    cards = boresight_of(wcs, header, ra_key="TELRA", dec_key="TELDEC", ra_unit="hourangle")
    assert cards.source == "header TELRA,TELDEC" and not cards.fallback
    crval = boresight_of(wcs, header, **BORESIGHT_KEYS)  # no BORE-RA/BORE-DEC
    assert crval == tuple(wcs.wcs.crval) and crval.fallback
    assert crval.source == "WCS CRVAL (no BORE-RA,BORE-DEC cards)"
    nan = boresight_of(wcs, {"BORE-RA": float("nan"), "BORE-DEC": 2.0}, **BORESIGHT_KEYS)
    assert nan.fallback and nan.source == "WCS CRVAL (BORE-RA,BORE-DEC not finite)"


def test_a_boresight_fallback_is_a_notice_and_the_stamps_header_says_where_the_boresight_came_from(caplog):
    wcs = sim.detector_wcs(detector=1, yaw_deg=90.0, size=2048)
    centers = np.array([[300.3, 400.6], [1700.2, 350.8]])
    cutouts, _ = _cutouts(centers, np.random.default_rng(6).normal(size=(2, 61, 61)), 61)

    def warp(metadata, **options):
        """The warp of the rule: the boresight from the header's cards (the config's defaults)."""
        options = {**OPTIONS, "orientation": "quarter_turns", **options}
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="brightstamps"):
            if "boresight" not in options:
                options["boresight"] = boresight_of(wcs, metadata, **BORESIGHT_KEYS, source="e1.fits")
            out = warp_stamps(cutouts, wcs, nb90_rots=1, source="e1.fits", **options).collect()
        # as the rule scripts' log writes them
        lines = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records]
        return out.header["BORESRC"][0], [m.groupdict() for m in map(NOTICE_LINE.match, lines) if m]

    source, notices = warp({})
    assert source == "WCS CRVAL (no BORE-RA,BORE-DEC cards)"
    assert [(n["logger"], n["key"]) for n in notices] == [("brightstamps.warp", "boresight_fallback")]
    message = notices[0]["message"]
    assert message.startswith(
        "e1.fits: the boresight is the WCS CRVAL (no BORE-RA,BORE-DEC cards), RA 150.000000"
    )
    assert "scale and the radial angles are wrong" in message and "boresight.ra_key/dec_key" in message
    assert warp({}, orientation="radial")[1]  # radial angles about CRVAL: a notice too
    assert warp({"BORE-RA": 150.0, "BORE-DEC": 2.0}) == ("header BORE-RA,BORE-DEC", [])
    fixed = boresight_of(wcs, {}, fixed=(150.0, 2.0), **BORESIGHT_KEYS)
    assert warp({}, boresight=fixed) == ("config boresight.ra/dec", [])
    # a boresight the warp does not use (no distortion removed, quarter turns) is only recorded
    assert warp({}, do_apply_transform=False) == ("WCS CRVAL (no BORE-RA,BORE-DEC cards)", [])


def test_camera_tables_hold_the_real_data_detectors(shared_data):
    from astropy.io import fits

    decam = load_camera("decam")
    images = sorted((shared_data / "decam_testcase6" / "images").glob("*_ooi_*.fits"))
    assert len(images) == 6  # (an empty glob would check nothing)
    for path in images:
        ccd = fits.getheader(path, 0).get("CCDNUM", fits.getheader(path, 1).get("CCDNUM"))
        assert ccd in decam, path
        assert nb90_rotations(decam[ccd]) == 0
    assert nb90_rotations(load_camera("hsc")[56]) == 0
    assert [nb90_rotations(y) for _, y in sorted(load_camera("demo").items())] == [0, 1, 2, 3]


def test_camera_table_overrides_and_errors(tmp_path):
    assert detector_yaws("demo", {"2": 45.0})[2] == 45.0
    assert detector_yaws("demo", {})[3] == 270.0
    with pytest.raises(InputError, match="camera: no table .*nope.yaml; available: .*decam"):
        load_camera("nope")
    (tmp_path / "bad.yaml").write_text("camera: bad\ndetector_yaw_deg: {a: 1}\n")
    with pytest.raises(InputError, match="bad.yaml: detector_yaw_deg must map integer"):
        load_camera("bad", directory=tmp_path)


def test_decam_boresight_from_sexagesimal_telra_teldec_is_the_pointing_of_the_real_headers(shared_data):
    """DECam: TELRA (hours) / TELDEC (deg) agree with the TPV reference point to a few arcsec."""
    from astropy.io import fits

    images = sorted((shared_data / "decam_testcase6" / "images").glob("*_ooi_*.fits"))
    assert len(images) == 6  # (an empty glob would check nothing)
    for path in images:
        primary, image = fits.getheader(path, 0), fits.getheader(path, 1)
        ra, dec = boresight_of(
            None, primary, ra_key="TELRA", dec_key="TELDEC", ra_unit="hourangle", source=str(path)
        )
        assert abs(ra - image["CRVAL1"]) < 0.005 and abs(dec - image["CRVAL2"]) < 0.005, path


def test_camera_tables_hold_every_detector_of_lsst_camera_descriptions():
    """decam.yaml / hsc.yaml: all detectors of obs_decam's and obs_subaru's camera.py, yaws as written."""
    import yaml

    from brightstamps.camera import CAMERA_DIR

    for name, n in (("decam", 62), ("hsc", 112)):
        text = (CAMERA_DIR / f"{name}.yaml").read_text()
        yaw_block = text.split("\ndetector_yaw_deg:\n")[1].split("\ndetector_names:\n")[0]
        keys = [line.split(":")[0].strip() for line in yaw_block.splitlines() if line.startswith("  ")]
        assert len(keys) == n and len(set(keys)) == n, name  # no id written twice (YAML would keep the last)
        assert yaml.safe_load(text)["camera"] == name
    decam, hsc = load_camera("decam"), load_camera("hsc")
    assert sorted(decam) == list(range(1, 63))
    assert sorted(hsc) == list(range(112))
    # obs_decam decam/camGeom/camera.py (20a34d1d): detectorList[i].name, .id, .yawDeg
    assert {1: decam[1], 2: decam[2], 20: decam[20], 28: decam[28], 36: decam[36], 62: decam[62]} == {
        1: -0.01,
        2: -0.105,
        20: -0.001,
        28: 0.019,
        36: 0.05,
        62: -0.026,
    }  # S29 S30 S9 S4 N5 N31
    assert all(nb90_rotations(y) == 0 for y in decam.values())
    # obs_subaru hsc/camera/camera.py (111d2ea9)
    assert {k: hsc[k] for k in (0, 21, 56, 100, 102, 104, 108)} == {
        0: 180.0042795,
        21: 180.0619751,
        56: 0.0011322,
        100: 269.9887411,
        102: 90.0296679,
        104: 180.0,
        108: 0.0,
    }  # 1_53 1_34 0_09 0_31 0_35 1_48(focus) 0_57(focus)
    turns = [nb90_rotations(hsc[k]) for k in range(112)]
    assert (turns.count(0), turns.count(1), turns.count(2), turns.count(3)) == (54, 2, 54, 2)
