"""A WCS in FK5, FK4 or galactic coordinates describes the same sky as its ICRS original: the same
stars at the same pixels, the same warp and the same stamps; a frame that the ICRS catalog cannot be
converted to stops with one line."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from frame_wcs import reexpress, sky_offset_mas
from numpy.testing import assert_allclose, assert_array_equal

from brightstamps import simulate as sim
from brightstamps.catalog import catalog_region, flux_limit_njy, match_stars
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.exposure import read_celestial_wcs
from brightstamps.frames import frame_name, wcs_frame
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.stampsfile import Stamps
from brightstamps.warp import boresight_of, boresight_polar_angles, distortion_free_maps, warp_stamps

BORESIGHT_KEYS = schema_defaults()["boresight"]  # the config's boresight cards when not set

SIZE = 2048
SHAPE = (SIZE, SIZE)
STAMP = (61, 61)
MJD_OBS = 58000.0  # the FK4 copy is observed then (FK4 positions depend on the epoch of observation)
#: frame -> (MJD-OBS of the copy, pixel tolerance): galactic and FK5 are rotations of ICRS, exact to
#: rounding; FK4's E-terms make the copy's CD matrix a fit, good to ~1e-5 px over the detector
FRAMES = {"galactic": (None, 1e-6), "fk5": (None, 1e-6), "fk4": (MJD_OBS, 1e-3)}


def _icrs_wcs():
    return sim.detector_wcs(detector=1, yaw_deg=90.0, size=SIZE)  # TAN-SIP about the boresight, turned


def _copy(name):
    wcs = _icrs_wcs()
    mjdobs = FRAMES[name][0]
    other, _ = reexpress(wcs, name, shape=SHAPE, mjdobs=mjdobs)
    assert sky_offset_mas(wcs, other, name, shape=SHAPE, mjdobs=mjdobs) < 0.01  # the same sky (0.2"/px)
    return wcs, other


def _catalog(wcs):
    """Bright stars on and around the detector (some only their stamp overlaps), as read_catalog gives."""
    xy = np.array(
        [
            [5.37, 7.61],
            [1024.3, 1030.8],
            [2040.1, 12.45],
            [30.2, 2000.9],
            [1500.55, 400.27],
            [-20.31, 900.13],
            [2070.42, 1500.77],
            [700.19, -25.53],
            [-200.0, -200.0],
            [1200.0, 2300.0],
        ]
    )
    ra, dec = wcs.all_pix2world(xy, 0).T
    t = Table(
        {
            "id": np.arange(1, len(xy) + 1, dtype=np.int64),
            "ra": ra,
            "dec": dec,
            "flux": np.full(len(xy), flux_limit_njy(12.0)),
            "mag": np.full(len(xy), 12.0),
        }
    )
    t.meta["path"] = "catalog.fits"
    return t


def _match(cat, wcs):
    return match_stars(
        cat, wcs, {}, shape=SHAPE, mag_limit=18.0, stamp_size=STAMP, proper_motion=False, source="e1.fits"
    )


@pytest.mark.parametrize("name", list(FRAMES))
def test_a_wcs_in_another_frame_finds_the_same_stars_at_the_same_pixels(name):
    wcs, other = _copy(name)
    cat = _catalog(wcs)
    ref, got = _match(cat, wcs), _match(cat, other)
    assert list(ref["gaia_id"]) == [1, 2, 3, 4, 5, 6, 7, 8]  # the two far ones do not overlap
    assert list(got["gaia_id"]) == list(ref["gaia_id"])
    assert_array_equal(got["ra"], ref["ra"])  # STARS keeps the catalog's ICRS positions
    assert_array_equal(got["dec"], ref["dec"])
    tol = FRAMES[name][1]
    assert_allclose(got["x"], ref["x"], rtol=0, atol=tol)
    assert_allclose(got["y"], ref["y"], rtol=0, atol=tol)


@pytest.mark.parametrize("name", list(FRAMES))
def test_the_catalog_region_is_in_icrs_whatever_the_frame_of_the_wcs(name):
    wcs, other = _copy(name)
    ref, got = catalog_region(wcs, SHAPE, stamp_size=STAMP), catalog_region(other, SHAPE, stamp_size=STAMP)
    assert_allclose(np.array(got), np.array(ref), rtol=0, atol=1e-9)  # ra, dec, radius in degrees


@pytest.mark.parametrize("name", list(FRAMES))
def test_the_distortion_free_frame_and_radial_angles_do_not_depend_on_the_frame(name):
    """The boresight is ICRS; in the copy's frame its tangent plane is turned, which J0 takes out."""
    wcs, other = _copy(name)
    centers = np.random.default_rng(3).uniform(0, SIZE, size=(6, 2))
    a_ref, q_ref = distortion_free_maps(wcs, centers, boresight=sim.BORESIGHT, half_size=(137, 137))
    a, q = distortion_free_maps(other, centers, boresight=sim.BORESIGHT, half_size=(137, 137))
    assert_allclose(a, a_ref, rtol=0, atol=1e-8)
    assert_allclose(q, q_ref, rtol=0, atol=1e-12)
    angles = boresight_polar_angles(other, centers, boresight=sim.BORESIGHT)
    assert_allclose(angles, boresight_polar_angles(wcs, centers, boresight=sim.BORESIGHT), rtol=0, atol=1e-8)


def _cutouts(stars, size=41):
    centers = np.column_stack([stars["x"], stars["y"]])
    corners = np.trunc(centers - (size - 1) / 2).astype(np.int64)
    table = Table(
        {"x": centers[:, 0], "y": centers[:, 1], "cutout_x0": corners[:, 0], "cutout_y0": corners[:, 1]}
    )
    n = len(centers)
    yy, xx = np.mgrid[:size, :size]
    images = [
        np.exp(-((xx - c[0] + k[0]) ** 2 + (yy - c[1] + k[1]) ** 2) / 8.0)
        for c, k in zip(centers, corners, strict=True)
    ]
    return Stamps(
        np.asarray(images, np.float32),
        np.zeros((n, size, size), np.int32),
        np.ones((n, size, size), np.float32),
        table,
        dict(LSST_MASK_PLANES),
    )


@pytest.mark.parametrize("name", list(FRAMES))
def test_a_wcs_in_another_frame_gives_the_same_warped_stamps(name):
    wcs, other = _copy(name)
    cat = _catalog(wcs)
    options = {
        "kernel": "lanczos3",
        "do_apply_transform": True,
        "model_stamp_buffer": 1.1,
        "nb90_rots": 0,
        "orientation": "radial",
        "boresight": sim.BORESIGHT,
    }
    ref = warp_stamps(_cutouts(_match(cat, wcs)), wcs, **options).collect()
    got = warp_stamps(_cutouts(_match(cat, other)), other, **options).collect()
    assert len(got) == len(ref) == 8
    assert_allclose(got.stars["orient_angle"], ref.stars["orient_angle"], rtol=0, atol=1e-6)
    assert_allclose(np.nan_to_num(got.image), np.nan_to_num(ref.image), rtol=0, atol=1e-5)
    assert_array_equal(np.isnan(got.image), np.isnan(ref.image))
    assert_array_equal(got.mask, ref.mask)
    assert (got.header["BORERA"][0], got.header["BOREDEC"][0]) == sim.BORESIGHT  # recorded in ICRS
    assert got.header["WCSFRAME"][0] == frame_name(wcs_frame(other)) and "WCSFRAME" not in ref.header


@pytest.mark.parametrize("name", list(FRAMES))
def test_the_fallback_boresight_is_the_reference_point_in_icrs(name):
    """Without boresight cards the WCS's CRVAL is used: converted from the WCS's frame to ICRS."""
    wcs, other = _copy(name)
    boresight = boresight_of(other, {}, **BORESIGHT_KEYS)
    assert boresight.fallback
    assert_allclose(boresight, wcs.wcs.crval, rtol=0, atol=1e-9)


def test_fk4_positions_are_those_of_the_epoch_of_observation():
    """FK4 is not inertial: the same FK4 numbers observed in 1950 and 2017 are ~0.1" apart."""
    _, other = _copy("fk4")
    assert frame_name(wcs_frame(other)) == "FK4 B1950.000 at MJD 58000.00000"
    cat = _catalog(_icrs_wcs())
    then = other.deepcopy()
    then.wcs.mjdobs = np.nan
    assert frame_name(wcs_frame(then)) == "FK4 B1950.000"
    observed, at_equinox = _match(cat, other), _match(cat, then)
    assert len(observed) == len(at_equinox) == 8
    shift = np.hypot(observed["x"] - at_equinox["x"], observed["y"] - at_equinox["y"])
    assert (shift > 1).all()  # px (0.2"/px): taking the equinox for the epoch would move the stars


def test_galactic_axes_are_galactic_whatever_radesys_says():
    """astropy's frame for GLON/GLAT with RADESYS = 'ICRS' would be ICRS: the axes decide."""
    wcs, other = _copy("galactic")
    other.wcs.radesys = "ICRS"  # a card left over by a re-projection
    assert wcs_frame(other).name == "galactic"
    cat = _catalog(wcs)
    assert_allclose(_match(cat, other)["x"], _match(cat, wcs)["x"], rtol=0, atol=1e-6)


def _header(ctype, **cards):
    h = fits.Header(
        {
            "NAXIS": 2,
            "NAXIS1": 100,
            "NAXIS2": 100,
            "CTYPE1": ctype[0],
            "CTYPE2": ctype[1],
            "CRVAL1": 10.0,
            "CRVAL2": 20.0,
            "CRPIX1": 50.0,
            "CRPIX2": 50.0,
            "CDELT1": -5e-5,
            "CDELT2": 5e-5,
        }
    )
    h.update(cards)
    return h


@pytest.mark.parametrize(
    ("ctype", "cards", "message"),
    [
        (
            ("ELON-TAN", "ELAT-TAN"),
            {},
            r"x.fits: the WCS's celestial frame \(CTYPE 'ELON-TAN', 'ELAT-TAN'\) cannot be "
            r"converted to the catalog's ICRS; give the WCS in RA/Dec",
        ),
        (
            ("RA---TAN", "DEC--TAN"),
            {"RADESYS": "GAPPT"},
            r"x.fits: the WCS's celestial frame \(CTYPE 'RA---TAN', "
            r"'DEC--TAN', RADESYS 'GAPPT'\) cannot be converted",
        ),
        (
            ("DEC--TAN", "RA---TAN"),
            {},
            r"x.fits: the WCS has CTYPE 'DEC--TAN', 'RA---TAN'; longitude must be on axis 1",
        ),
    ],
)
def test_a_frame_the_catalog_cannot_be_converted_to_stops_with_one_line(ctype, cards, message):
    with pytest.raises(InputError, match=message) as err:
        read_celestial_wcs(_header(ctype, **cards), source="x.fits")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("cards", "expected"),
    [
        ({}, "ICRS"),
        ({"RADESYS": "ICRS"}, "ICRS"),
        ({"EQUINOX": 2000.0}, "FK5 J2000.000"),
        ({"RADESYS": "FK5", "EQUINOX": 2000.0}, "FK5 J2000.000"),
        ({"EQUINOX": 1950.0}, "FK4 B1950.000"),
        ({"RADESYS": "FK4", "EQUINOX": 1950.0, "MJD-OBS": 58000.5}, "FK4 B1950.000 at MJD 58000.50000"),
        ({"RADESYS": "FK4-NO-E", "EQUINOX": 1950.0}, "FK4-NO-E B1950.000"),
    ],
)
def test_the_frame_of_an_equatorial_header_follows_radesys_and_equinox(cards, expected):
    assert (
        frame_name(wcs_frame(read_celestial_wcs(_header(("RA---TAN", "DEC--TAN"), **cards), source="x.fits")))
        == expected
    )


def test_an_icrs_wcs_takes_no_conversion(monkeypatch):
    """ICRS: the numbers go to the WCS as they are (outputs stay byte-identical), astropy not asked."""
    import brightstamps.frames as frames

    def refuse(*args):
        raise AssertionError("an ICRS WCS was converted")

    monkeypatch.setattr(frames, "_convert", refuse)
    wcs = _icrs_wcs()
    assert wcs_frame(wcs) is None
    stars = _match(_catalog(wcs), wcs)
    assert len(stars) == 8
    assert boresight_of(wcs, {}, **BORESIGHT_KEYS) == tuple(wcs.wcs.crval)
    assert (
        len(
            distortion_free_maps(
                wcs, np.array([[100.0, 200.0]]), boresight=sim.BORESIGHT, half_size=(137, 137)
            )[0]
        )
        == 1
    )
