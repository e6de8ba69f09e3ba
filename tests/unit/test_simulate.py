"""Known-answer tests of the demo simulator (brightstamps.simulate)."""

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from brightstamps import simulate as sim
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.exposure import read_exposure
from brightstamps.masks import LSST_MASK_PLANES

SAT_BIT = 1 << LSST_MASK_PLANES["SAT"]
CR_BIT = 1 << LSST_MASK_PLANES["CR"]
BAD_BIT = 1 << LSST_MASK_PLANES["BAD"]
DET_BIT = 1 << LSST_MASK_PLANES["DETECTED"]


def direct_sky(x, y, *, p0, yaw_deg, k=sim.DISTORTION_K, scale=0.2, boresight=(150.0, 2.0)):
    """Independent implementation of the focal-plane model: pixel -> (ra, dec) in deg."""
    ux, uy = x - p0[0], y - p0[1]
    fac = 1 + k * (ux**2 + uy**2)
    ux, uy = ux * fac, uy * fac
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    fx, fy = c * ux - s * uy, s * ux + c * uy
    xi = math.radians(scale / 3600) * -fx  # intermediate world coords, M = diag(-1, 1)
    eta = math.radians(scale / 3600) * fy
    a0, d0 = math.radians(boresight[0]), math.radians(boresight[1])
    ra = a0 + np.arctan2(xi, math.cos(d0) - eta * math.sin(d0))
    dec = np.arcsin((math.sin(d0) + eta * math.cos(d0)) / np.sqrt(1 + xi**2 + eta**2))
    return np.degrees(ra), np.degrees(dec)


def ang_sep_deg(ra1, dec1, ra2, dec2):
    """Angular separation (deg), haversine."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("demo")
    result = sim.simulate_demo(outdir, seed=7, detector_size=256, n_bright=4, n_faint=8, n_field=0)
    return outdir, result


@pytest.fixture(scope="module")
def default_demo(tmp_path_factory):
    """The demo as the workflow makes it: the schema's defaults (four 2048 px detectors, 40 field stars each)."""
    outdir = tmp_path_factory.mktemp("default_demo")
    kw = {k: v for k, v in schema_defaults()["demo"].items() if k != "outdir"}
    result = sim.simulate_demo(outdir, **kw)
    with fits.open(result["truth"]) as hdul:
        stars = Table(hdul["STARS"].data)
    return outdir, result, stars, kw


# ---------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize(("detector", "yaw"), sim.DEMO_DETECTORS)
def test_wcs_matches_direct_focal_plane_map(detector, yaw):
    size = 1024
    wcs = sim.detector_wcs(detector=detector, yaw_deg=yaw, size=size)
    p0 = sim.detector_origin(detector=detector, yaw_deg=yaw, size=size)
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-100, size + 100, 200), [0, size - 1, 0, size - 1]])
    y = np.concatenate([rng.uniform(-100, size + 100, 200), [0, 0, size - 1, size - 1]])
    world = wcs.pixel_to_world(x, y)
    ra, dec = direct_sky(x, y, p0=p0, yaw_deg=yaw)
    sep_px = ang_sep_deg(world.ra.deg, world.dec.deg, ra, dec) * 3600 / 0.2
    assert sep_px.max() < 1e-6
    # the module's own focal-plane functions agree too, and invert
    fx, fy = sim.pixel_to_focal(x, y, p0=p0, yaw_deg=yaw)
    ra2, dec2 = sim.focal_to_sky(fx, fy)
    assert (ang_sep_deg(ra2, dec2, ra, dec) * 3600 / 0.2).max() < 1e-6
    xb, yb = sim.focal_to_pixel(fx, fy, p0=p0, yaw_deg=yaw)
    np.testing.assert_allclose(xb, x, atol=1e-8)
    np.testing.assert_allclose(yb, y, atol=1e-8)
    # header cards as specified
    hdr = wcs.to_header(relax=True)
    assert hdr["CTYPE1"] == "RA---TAN-SIP" and hdr["CTYPE2"] == "DEC--TAN-SIP"
    assert hdr["A_3_0"] == hdr["A_1_2"] == hdr["B_2_1"] == hdr["B_0_3"] == sim.DISTORTION_K
    np.testing.assert_allclose([hdr["CRPIX1"], hdr["CRPIX2"]], p0 + 1)


def test_detector_layout():
    centres, origins = [], set()
    for det, yaw in sim.DEMO_DETECTORS:
        p0 = sim.detector_origin(detector=det, yaw_deg=yaw, size=1024)
        origins.add(tuple(np.round(p0, 3)))
        assert not (0 <= p0[0] <= 1023 and 0 <= p0[1] <= 1023), "optical axis must be off the detector"
        fx, fy = sim.pixel_to_focal(511.5, 511.5, p0=p0, yaw_deg=yaw)
        assert 1200 < math.hypot(fx, fy) < 1500
        centres.append((np.sign(fx), np.sign(fy)))
    assert len(set(centres)) == 4  # four different quadrants
    assert len(origins) == 4  # and no two detectors share the same pixel-to-focal map


def test_wcs_survives_file_round_trip(tmp_path):
    path = tmp_path / "e.fits"
    sim.simulate_exposure(path, detector=2, yaw_deg=180.0, size=100, stars=None, seed=1)
    exp = read_exposure(str(path), fmt="lsst_calexp")
    p0 = sim.detector_origin(detector=2, yaw_deg=180.0, size=100)
    x, y = np.array([0.0, 50.0, 99.0]), np.array([0.0, 70.0, 99.0])
    world = exp.wcs.pixel_to_world(x, y)
    ra, dec = direct_sky(x, y, p0=p0, yaw_deg=180.0)
    assert (ang_sep_deg(world.ra.deg, world.dec.deg, ra, dec) * 3600 / 0.2).max() < 1e-6
    md = exp.metadata
    assert (md["DETECTOR"], md["DET-YAW"], md["BORE-RA"], md["BORE-DEC"]) == (2, 180.0, 150.0, 2.0)
    assert md["MJD-OBS"] == sim.MJD_OBS and md["FILTER"] == "r" and md["ZP"] == 27.0
    assert exp.mask_planes == LSST_MASK_PLANES


@pytest.mark.parametrize(("det", "yaw"), sim.DEMO_DETECTORS)
def test_pixel_scale_changes_by_about_one_percent(det, yaw):
    size = 2048
    wcs = sim.detector_wcs(detector=det, yaw_deg=yaw, size=size)
    p0 = sim.detector_origin(detector=det, yaw_deg=yaw, size=size)
    corners = np.array([(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)], dtype=float)
    r = np.hypot(*(corners - p0).T)
    scales = []
    for cx, cy in (corners[np.argmin(r)], corners[np.argmax(r)]):
        expected = 0.2 * (1 + 3 * sim.DISTORTION_K * ((cx - p0[0]) ** 2 + (cy - p0[1]) ** 2))
        ux, uy = np.array([cx, cy]) - p0
        ex, ey = ux / math.hypot(ux, uy), uy / math.hypot(ux, uy)  # radial direction
        a = wcs.pixel_to_world(cx - 0.5 * ex, cy - 0.5 * ey)
        b = wcs.pixel_to_world(cx + 0.5 * ex, cy + 0.5 * ey)
        scales.append(a.separation(b).arcsec)
        # local radial scale 1 + 3 k r^2 (the gnomonic projection adds ~1e-5 at these radii)
        assert scales[-1] == pytest.approx(expected, rel=3e-5)
    change = scales[1] / scales[0] - 1
    assert 0.008 < change < 0.013
    assert abs(scales[0] / 0.2 - 1) < 0.006  # near the nominal scale close to the axis


# ---------------------------------------------------------------------------------- PSF


def test_psf_integrates_to_one():
    half = 1000
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    psf = sim.psf_focal(x, y)
    inside = np.hypot(x, y) <= half
    raw = psf.sum()
    assert abs(raw - 1) < 0.02  # plain grid sum, wings beyond the grid missing (~1 %)
    # analytic flux outside the circle r = half: Moffat wings and the spikes' Lorentzian tails
    r0, beta, wing = sim.PSF_WING_R0, sim.PSF_WING_BETA, sim.PSF_WING_FRACTION
    moffat_tail = wing * (1 + (half / r0) ** 2) ** (1 - beta)
    spike_tail = (
        sim.SPIKE_AMPLITUDE
        * math.sqrt(2 * math.pi)
        * sim.SPIKE_WIDTH
        * 2
        * sim.SPIKE_LENGTH
        * (math.pi / 2 - math.atan(half / sim.SPIKE_LENGTH))
    )
    total = psf[inside].sum() + moffat_tail + spike_tail
    assert abs(total - 1) < 2e-3


def test_psf_is_not_symmetric_under_quarter_and_half_turns():
    stamp = sim.true_psf_stamp((151, 151))
    assert stamp.shape == (151, 151)
    assert stamp[75, 75] == pytest.approx(sim.psf_focal(0.0, 0.0))
    assert stamp[75 + 20, 75 + 50] == pytest.approx(sim.psf_focal(50.0, 20.0))  # [y, x]
    # a quarter turn moves the spikes; a half turn keeps them but moves the ghost
    assert np.abs(np.rot90(stamp, 1) - stamp).max() > 0.1 * sim.SPIKE_AMPLITUDE
    assert np.abs(np.rot90(stamp, 2) - stamp).max() > 0.5 * sim.GHOST_PEAK
    with pytest.raises(ValueError):
        sim.true_psf_stamp((150, 151))


# ---------------------------------------------------------------------------------- rendering


def test_unsaturated_star_centroid_at_true_position(tmp_path):
    x0, y0, flux = 151.3, 142.7, float(sim.mag_to_flux(12.6))
    path, sky_path = tmp_path / "e.fits", tmp_path / "sky.fits"
    res = sim.simulate_exposure(
        path,
        detector=0,
        yaw_deg=0.0,
        size=300,
        stars={"x": [x0], "y": [y0], "flux": [flux]},
        seed=3,
        sky_path=sky_path,
        cosmic_rays=False,
        bad_column=False,
    )
    exp = read_exposure(str(path), fmt="lsst_calexp")
    sky = fits.getdata(sky_path)
    assert sky.shape == (300, 300) and sky.dtype.kind == "f" and np.abs(sky).max() <= 15.0
    assert not (exp.mask & SAT_BIT).any()
    assert exp.image.max() < 35000
    assert not res["stars"]["saturated"][0] and res["stars"]["on_detector"][0]
    data = exp.image - sky
    yy, xx = np.mgrid[0:300, 0:300]
    box = np.hypot(xx - x0, yy - y0) < 12
    w = data[box]
    cx, cy = (w * xx[box]).sum() / w.sum(), (w * yy[box]).sum() / w.sum()
    assert math.hypot(cx - x0, cy - y0) < 0.05
    # the total flux in the image matches the input (pixel areas included; wings beyond 140 px lost)
    assert data.sum() == pytest.approx(flux, rel=0.03)


def _ray_profile(img, x0, y0, angle_deg):
    radii = np.arange(12.0, 40.0, 0.5)
    t = math.radians(angle_deg)
    return ndimage.map_coordinates(img, [y0 + radii * math.sin(t), x0 + radii * math.cos(t)], order=1).sum()


def _spike_angle(img, x0, y0):
    angles = np.arange(0.0, 180.0, 0.5)
    power = [_ray_profile(img, x0, y0, a) + _ray_profile(img, x0, y0, a + 180) for a in angles]
    return angles[int(np.argmax(power))]


@pytest.mark.parametrize(("yaw", "expected"), [(0.0, 30.0), (90.0, 120.0), (180.0, 30.0), (270.0, 120.0)])
def test_spike_direction_follows_yaw(tmp_path, yaw, expected):
    x0, y0 = 100.0, 100.0
    path = tmp_path / "e.fits"
    sim.simulate_exposure(
        path,
        detector=1,
        yaw_deg=yaw,
        size=200,
        stars={"x": [x0], "y": [y0], "flux": [5e5]},
        seed=0,
        sky=(0.0, 0.0, 0.0),
        noise=False,
        cosmic_rays=False,
        bad_column=False,
    )
    img = read_exposure(str(path), fmt="lsst_calexp").image.astype(float)
    # focal-plane angle 30 deg appears at detector angle 30 - yaw (mod 180)
    # (mod 180 a +-90 deg error would pass; the ghost check below catches it)
    assert abs(_spike_angle(img, x0, y0) - expected) <= 1.0
    # the ghost, at focal offset GHOST_OFFSET, sits at R(-yaw) GHOST_OFFSET in detector pixels
    c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    ox, oy = sim.GHOST_OFFSET
    gx, gy = c * ox + s * oy, -s * ox + c * oy
    ghost = img[int(round(y0 + gy)), int(round(x0 + gx))]
    anti = img[int(round(y0 - gy)), int(round(x0 - gx))]
    assert ghost > 1.5 * anti


def test_no_stars_gives_sky_plus_noise(tmp_path):
    path = tmp_path / "e.fits"
    res = sim.simulate_exposure(
        path,
        detector=3,
        yaw_deg=270.0,
        size=200,
        stars=None,
        seed=11,
        sky=(3.0, 0.01, -0.02),
        cosmic_rays=False,
    )
    exp = read_exposure(str(path), fmt="lsst_calexp")
    yy, xx = np.mgrid[0:200, 0:200]
    resid = exp.image - (3.0 + 0.01 * xx - 0.02 * yy)
    assert abs(resid.mean()) < 0.2
    assert resid.std() == pytest.approx(math.sqrt(425.0), rel=0.02)
    np.testing.assert_allclose(exp.variance, 425.0)
    assert not (exp.mask & (SAT_BIT | CR_BIT | DET_BIT)).any()
    assert (exp.mask & BAD_BIT).any()  # one partial bad column
    assert len(res["stars"]) == 0


def test_saturated_star_bleeds_along_columns_and_off_detector_star_adds_light(tmp_path):
    path = tmp_path / "e.fits"
    flux_sat = float(sim.mag_to_flux(8.0))
    stars = {"x": [120.4, -40.0], "y": [110.6, 60.0], "flux": [flux_sat, flux_sat]}
    res = sim.simulate_exposure(
        path, detector=0, yaw_deg=0.0, size=240, stars=stars, seed=5, cosmic_rays=False, bad_column=False
    )
    exp = read_exposure(str(path), fmt="lsst_calexp")
    sat = (exp.mask & SAT_BIT) != 0
    assert np.all(exp.image[sat] == sim.SATURATION)
    assert exp.image.max() <= sim.SATURATION
    # a bleed trail runs along column 120 far beyond the saturated core, both ways
    rows = np.nonzero(sat[:, 120])[0]
    assert rows.min() < 110 - 30 and rows.max() > 110 + 30
    assert sat[:, 100].sum() < 5  # but not 20 columns away
    assert list(res["stars"]["saturated"]) == [True, True]
    assert list(res["stars"]["on_detector"]) == [True, False]
    # the star 40 px off the left edge lights the edge: compare with the right edge
    off_only = sim.render_stars(detector=0, yaw_deg=0.0, size=240, stars=np.array([[-40.0, 60.0, flux_sat]]))
    on_only = sim.render_stars(detector=0, yaw_deg=0.0, size=240, stars=np.array([[120.4, 110.6, flux_sat]]))
    np.testing.assert_allclose(res["model"], off_only + on_only, rtol=1e-12)
    assert off_only[60, 0] > 50 and off_only[60, 0] > 10 * on_only[60, 0]
    assert exp.image[55:66, 0:3].mean() > 60  # ~100 ADU of wing light at 40-43 px


def test_cosmic_rays_are_flagged(tmp_path):
    path = tmp_path / "e.fits"
    sim.simulate_exposure(path, detector=0, yaw_deg=0.0, size=512, stars=None, seed=2, bad_column=False)
    exp = read_exposure(str(path), fmt="lsst_calexp")
    cr = (exp.mask & CR_BIT) != 0
    n_events = ndimage.label(cr, structure=np.ones((3, 3)))[1]
    assert 5 <= n_events <= 8  # 30 * (512 / 1024)^2 = 7.5 -> 8, a few may touch
    assert np.all(exp.image[cr] > 1000)
    assert np.all(exp.mask[cr] & DET_BIT)


# ---------------------------------------------------------------------------------- demo


def test_demo_rerun_is_byte_identical(demo, tmp_path):
    outdir, result = demo
    again = tmp_path / "again"
    assert (
        sim.main([str(again), "--seed", "7", "--detector-size", "256", "--n-faint", "8", "--n-field", "0"])
        == 0
    )
    names = sorted(p.name for p in outdir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert len(names) == 10
    for name in names:
        assert (outdir / name).read_bytes() == (again / name).read_bytes(), name
    other = sim.simulate_demo(tmp_path / "other", seed=8, detector_size=256, n_bright=4, n_faint=8, n_field=0)
    assert Path(other["exposures"][0]).read_bytes() != (outdir / "demo_det0.fits").read_bytes()


def test_demo_draws_are_those_of_the_reference_simulator(demo):
    """Seed 7 gives the numbers the simulator gave before its functions were split (same draws, order)."""
    outdir, _ = demo
    with fits.open(outdir / "truth.fits") as hdul:
        detectors, stars = Table(hdul["DETECTORS"].data), Table(hdul["STARS"].data)
    sky_a = [-1.7549683851588949, 8.32491862646535, -1.4823426423784438, 0.7049767822669617]
    assert list(detectors["sky_a"]) == pytest.approx(sky_a, rel=1e-12)
    assert len(stars) == 61
    assert list(stars["source_id"][:3]) == [3871360039607646844, 3804944732071160585, 3814248020576250713]
    assert stars["x_true"][0] == pytest.approx(49.23536211998335, rel=1e-12)
    assert stars["pmra"][0] == pytest.approx(455.7323238347703, rel=1e-12)
    with fits.open(outdir / "demo_det2.fits") as hdul:
        assert hdul["IMAGE"].data[100, 100] == pytest.approx(47.45744323730469, rel=1e-7)  # float32
        assert int(np.count_nonzero(hdul["MASK"].data)) == 30852


def test_demo_files_and_truth(demo):
    outdir, result = demo
    expected = [f"demo_det{d}.fits" for d, _ in sim.DEMO_DETECTORS]
    assert [Path(p).name for p in result["exposures"]] == expected
    assert all(p.endswith("_sky.fits") for p in result["sky_models"])
    with fits.open(result["truth"]) as truth:
        assert truth[0].header["PIXSCALE"] == 0.2 and truth[0].header["SATLEV"] == 50000.0
        np.testing.assert_array_equal(truth["PSF"].data, sim.true_psf_stamp((275, 275)))
        stars = Table(truth["STARS"].data)
    cat = Table(fits.getdata(result["catalog"], 1))  # Table.read would mask the NaN
    assert len(np.unique(cat["source_id"])) == len(cat) and cat["source_id"].dtype.kind == "i"
    assert cat["source_id"].dtype.itemsize == 8 and cat["source_id"].min() > 10**18
    assert np.all(cat["ref_epoch"] == 2016.0)
    assert np.isnan(cat["phot_g_mean_mag"]).sum() == 1
    for det, _ in sim.DEMO_DETECTORS:
        mine = stars[(stars["detector"] == det) & (stars["g_mag"] < 18)]
        on = mine[mine["on_detector"]]
        assert len(on) >= 6 and (~mine["on_detector"]).sum() == 1
        assert (~on["saturated"]).sum() >= 2
        assert np.all(on[~on["saturated"]]["peak_adu"] < 35000)
        brightest = mine[mine["g_mag"] < 8]
        xy = np.column_stack([brightest["x_true"], brightest["y_true"]])
        d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
        assert d[np.triu_indices(len(xy), 1)].min() >= 0.2 * 256  # apart (spacing relaxed when crowded)
    faint = stars[stars["g_mag"] > 18]
    assert np.all((faint["g_mag"] >= 19) & (faint["g_mag"] <= 22))
    # ~10 catalog stars fall on no detector
    assert len(cat) - len(np.unique(stars["source_id"])) == 10


def test_catalog_proper_motion_gives_true_position(demo):
    outdir, result = demo
    stars = Table.read(result["truth"], hdu="STARS")
    cat = Table.read(result["catalog"])
    dt = (sim.MJD_OBS - 57388.5) / 365.25
    fast = cat[np.hypot(cat["pmra"], cat["pmdec"]) > 400]
    assert len(fast) == 1
    for det, _yaw in sim.DEMO_DETECTORS:
        exp = read_exposure(str(outdir / f"demo_det{det}.fits"), fmt="lsst_calexp")
        mine = stars[stars["exposure"] == f"demo_det{det}"]
        row = {sid: i for i, sid in enumerate(cat["source_id"])}
        c = cat[[row[s] for s in mine["source_id"]]]
        ra = c["ra"] + c["pmra"] * dt / 3.6e6 / np.cos(np.radians(c["dec"]))
        dec = c["dec"] + c["pmdec"] * dt / 3.6e6
        x, y = exp.wcs.all_world2pix(ra, dec, 0)
        err = np.hypot(x - mine["x_true"], y - mine["y_true"])
        assert err.max() < 0.01
        x_nopm, y_nopm = exp.wcs.all_world2pix(c["ra"], c["dec"], 0)
        err_nopm = np.hypot(x_nopm - mine["x_true"], y_nopm - mine["y_true"])
        if fast["source_id"][0] in set(mine["source_id"]):
            assert err_nopm.max() > 20  # 500 mas/yr over 10 yr = 25 px


# ---------------------------------------------------------------------------------- field stars


class _FixedUniforms:
    """A stand-in generator whose uniforms are given."""

    def __init__(self, u):
        self.u = np.asarray(u, dtype=float)

    def random(self, n):
        assert n == len(self.u)
        return self.u


def test_field_magnitudes_invert_the_cumulative_counts():
    # G = log10(10^2.4 + u (10^5.25 - 10^2.4)) / 0.3: u = 0 -> 8, u -> 1 -> 17.5; the median of
    # dN/dG ~ 10^(0.3 G) is log10((10^2.4 + 10^5.25) / 2) / 0.3 = 16.49861
    g = sim.field_magnitudes(_FixedUniforms([0.0, 0.5, 1.0 - 1e-12]), 3)
    assert g[0] == pytest.approx(8.0, abs=1e-12)
    assert g[1] == pytest.approx(16.498610, abs=1e-6)
    assert g[2] == pytest.approx(17.5, abs=1e-9)
    assert sim.SATURATION_G == pytest.approx(11.9144, abs=1e-4)


def test_field_magnitudes_rise_as_ten_to_the_0_3_g():
    n = 200_000
    g = sim.field_magnitudes(np.random.default_rng(3), n)
    assert g.min() >= 8.0 and g.max() < 17.5
    edges = np.arange(8.0, 17.51, 0.5)
    counts = np.histogram(g, edges)[0]
    cdf = 10.0 ** (0.3 * edges)
    expected = n * np.diff(cdf) / (cdf[-1] - cdf[0])
    pull = (counts - expected) / np.sqrt(expected)
    assert np.abs(pull).max() < 4.5  # every bin within Poisson errors (19 bins)
    assert (pull**2).sum() < 19 + 4 * math.sqrt(2 * 19)  # chi2 of 19 bins
    # the slope of log10(counts) against G: 0.3 (a uniform draw gives 0, dN/dG ~ 10^(0.6 G) gives 0.6)
    keep = counts > 100
    slope = np.polyfit(
        0.5 * (edges[:-1] + edges[1:])[keep], np.log10(counts[keep]), 1, w=np.sqrt(counts[keep])
    )[0]
    assert slope == pytest.approx(0.3, abs=0.01)
    # the docstring's fractions
    assert (g < sim.SATURATION_G).mean() == pytest.approx(0.0197, abs=0.002)
    assert ((g >= 15) & (g < 17.5)).mean() == pytest.approx(0.823, abs=0.005)


def test_default_demo_field_stars_in_truth_and_catalog(default_demo):
    outdir, result, stars, kw = default_demo
    assert kw["n_field"] == 40
    cat = Table(fits.getdata(result["catalog"], 1))
    row = {sid: i for i, sid in enumerate(cat["source_id"])}
    assert len(row) == len(cat)  # ids unique, field stars' included
    field = stars[stars["kind"] == "field"]
    for det, _ in sim.DEMO_DETECTORS:
        mine = field[field["detector"] == det]
        assert len(mine) == 40 and np.all(mine["on_detector"])
        assert np.all(mine["exposure"] == f"demo_det{det}")
    assert len(np.unique(field["source_id"])) == 160
    assert field["g_mag"].min() >= 8.0 and field["g_mag"].max() < 17.5
    c = cat[[row[s] for s in field["source_id"]]]
    np.testing.assert_array_equal(c["phot_g_mean_mag"], field["g_mag"])
    np.testing.assert_array_equal(c["pmra"], field["pmra"])
    pm = np.hypot(c["pmra"], c["pmdec"])
    assert pm.max() < 20 and pm.std() > 2  # the others' small random proper motions
    np.testing.assert_allclose(field["flux_adu"], sim.mag_to_flux(field["g_mag"]), rtol=1e-12)
    # the other kinds are all still there
    kinds = {str(k) for k in stars["kind"]}
    assert kinds == {"sat", "unsat", "nan", "off", "faint", "field"}
    assert (stars["kind"] == "nan").sum() == 1 and np.isnan(stars["catalog_g_mag"][stars["kind"] == "nan"][0])


def test_default_demo_field_stars_mostly_unsaturated_a_few_saturated(default_demo):
    _, _, stars, _ = default_demo
    field = stars[stars["kind"] == "field"]
    n_sat = int(field["saturated"].sum())
    assert 1 <= n_sat <= 8  # 160 x 2 % = 3.2 expected
    assert (field["g_mag"] >= 15).mean() > 0.7
    assert np.all(field["g_mag"][field["saturated"]] < 12.0)
    # a saturated star is one brighter than the saturation limit (11.82-11.91 with its pixel phase)
    bright = field[field["g_mag"] < 11.8]
    faint = field[field["g_mag"] > 12.0]
    assert np.all(bright["saturated"]) and not np.any(faint["saturated"])


def test_default_demo_field_stars_clear_of_cores_and_bleed_trails(default_demo):
    outdir, _, stars, _ = default_demo
    sat_bit = 1 << LSST_MASK_PLANES["SAT"]
    for det, _ in sim.DEMO_DETECTORS:
        mine = stars[(stars["exposure"] == f"demo_det{det}") & (stars["g_mag"] < 18)]
        x, y = np.asarray(mine["x_true"]), np.asarray(mine["y_true"])
        saturated = np.asarray(mine["g_mag"] < sim.SATURATION_G + 0.1)
        d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        dx = np.abs(x[:, None] - x[None, :])
        np.fill_diagonal(d, np.inf)
        np.fill_diagonal(dx, np.inf)
        is_field = np.asarray(mine["kind"] == "field")
        either_sat = saturated[:, None] | saturated[None, :]
        assert d[is_field].min() >= 25.0
        assert d[is_field][either_sat[is_field]].min() >= 60.0
        assert dx[is_field][either_sat[is_field]].min() >= 25.0
        # and so, in the image: no SAT pixel (core or bleed trail) within 6 px of an unsaturated field star
        mask = fits.getdata(outdir / f"demo_det{det}.fits", "MASK")
        yy, xx = np.mgrid[-6:7, -6:7]
        disc = np.hypot(xx, yy) <= 6
        for row in mine[is_field & ~saturated]:
            cx, cy = int(round(row["x_true"])), int(round(row["y_true"]))
            ys, xs = cy + yy[disc], cx + xx[disc]
            inside = (xs >= 0) & (xs < mask.shape[1]) & (ys >= 0) & (ys < mask.shape[0])
            assert not (mask[ys[inside], xs[inside]] & sat_bit).any(), (det, row["x_true"], row["y_true"])
        # a saturated field star's own core is SAT
        for row in mine[is_field & np.asarray(mine["saturated"])]:
            assert mask[int(round(row["y_true"])), int(round(row["x_true"]))] & sat_bit


def test_field_stars_leave_the_other_stars_as_they_were_and_reruns_are_byte_identical(tmp_path):
    args = {"seed": 7, "detector_size": 512, "n_bright": 2, "n_faint": 4}
    with_field = sim.simulate_demo(tmp_path / "a", **args, n_field=10)
    without = sim.simulate_demo(tmp_path / "b", **args, n_field=0)
    cat_a = Table(fits.getdata(with_field["catalog"], 1))
    cat_b = Table(fits.getdata(without["catalog"], 1))
    assert len(cat_a) == len(cat_b) + 40
    for name in cat_b.colnames:  # the field stars are drawn last: every other star is unchanged
        np.testing.assert_array_equal(cat_a[name][: len(cat_b)], cat_b[name], err_msg=name)
    truth_a = Table(fits.getdata(with_field["truth"], "STARS"))
    truth_b = Table(fits.getdata(without["truth"], "STARS"))
    assert (truth_a["kind"] == "field").sum() == 40 and (truth_b["kind"] == "field").sum() == 0
    others = truth_a[truth_a["kind"] != "field"]
    for name in ("exposure", "source_id", "kind", "g_mag", "x_true", "y_true", "ra_true", "pmra"):
        np.testing.assert_array_equal(others[name], truth_b[name], err_msg=name)
    # same seed, same bytes, through the command line too
    again = tmp_path / "again"
    argv = ["--seed", "7", "--detector-size", "512", "--n-bright", "2", "--n-faint", "4", "--n-field", "10"]
    assert sim.main([str(again), *argv]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in again.iterdir()) and len(names) == 10
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (again / name).read_bytes(), name


def test_too_many_field_stars_is_an_error_naming_the_option(tmp_path):
    with pytest.raises(
        InputError, match=r"^demo\.n_field = 60: detector 0 \(256 x 256 px\) has room for only"
    ):
        sim.simulate_demo(tmp_path / "full", seed=7, detector_size=256, n_bright=4, n_faint=0, n_field=60)
    assert list((tmp_path / "full").iterdir()) == []  # nothing written
