"""config/examples/decam/ on the six real DECam CP exposures: the G = 10.5 star all six cut-outs
are centred on is found in each, lands on the central pixel, has its saturated core masked SAT and
an annulus whose MEANCLIP is 1 after normalization."""

import csv

import numpy as np
import pytest
import yaml
from astropy.table import Table
from scipy import ndimage, optimize
from workflow_runs import run_snakemake

from brightstamps import exposure, extract, skymodels, warp
from brightstamps._warp_kernel import footprint_or
from brightstamps.normalize import annulus_mask
from brightstamps.stampsfile import read_stamps
from brightstamps.stats import clipped_statistic

STAR_ID = 869663330491814144  # Gaia DR2, G = 10.52


@pytest.fixture(scope="module")
def decam_run(tmp_path_factory, repo, shared_data):
    """The example as the README runs it, in a directory of its own (its paths made absolute: they
    point into ``shared_data``)."""
    example = repo / "config" / "examples" / "decam"
    run = tmp_path_factory.mktemp("decam_example")
    config = yaml.safe_load((example / "config.yaml").read_text())
    config["exposures"] = str(run / "exposures.tsv")
    config["catalog"]["path"] = str((repo / config["catalog"]["path"]).resolve())
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with open(example / "exposures.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["image"] = str((repo / r["image"]).resolve())
    with open(run / "exposures.tsv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    # the default config first, then the example's fields over it, as `--configfile` does from the root
    run_snakemake(run, "--configfile", str(repo / "config" / "config.yaml"), str(run / "config.yaml"))
    return run, config, rows


def _star(stamps):
    return list(stamps.stars["gaia_id"]).index(STAR_ID)


def _bad_bits(planes, names):
    return sum(1 << planes[p] for p in names if p in planes)


def test_the_star_is_found_normalized_to_one_with_its_core_masked_sat(decam_run):
    run, config, rows = decam_run
    assert len(rows) == 6
    inner, outer = config["annular_flux_radii"]
    for r in rows:
        stamps = read_stamps(run / "results" / r["exposure"] / "bright_star_stamps.fits")
        assert stamps.header["DETECTOR"] == {"S4": 28, "S9": 20}[r["detector"]]  # the table names the CCD
        k = _star(stamps)
        assert stamps.stars["norm_status"][k] == "ok"
        assert stamps.stars["g_mag"][k] == pytest.approx(10.52 + 0.106, abs=0.01)  # Vega G on LSST's scale
        cx, cy = stamps.header["CENTERX"], stamps.header["CENTERY"]
        mask = stamps.mask[k]
        assert mask[cy, cx] & (1 << stamps.mask_planes["SAT"])
        ring = annulus_mask(stamps.stamp_shape, (cx, cy), inner, outer)
        valid = (mask[ring] & _bad_bits(stamps.mask_planes, config["bad_mask_planes"])) == 0
        flux, _, _ = clipped_statistic(
            stamps.image[k][ring], valid=valid, statistic="MEANCLIP", num_sigma_clip=4.0, num_iter=3
        )
        assert flux == pytest.approx(1.0, abs=1e-6)


def test_a_star_at_the_catalog_position_lands_on_the_central_pixel(decam_run):
    """Through the real TPV WCS of each exposure: a Gaussian put at the matched star's pixel
    position, cut out and warped as the workflow does, has its centroid on the central pixel."""
    run, config, rows = decam_run
    for r in rows:
        exp = exposure.read_exposure(r["image"], fmt="decam_cp")
        stars = Table.read(run / "results" / r["exposure"] / "stars.ecsv")
        stars = stars[stars["gaia_id"] == STAR_ID]
        x, y = stars["x"][0], stars["y"][0]
        yy, xx = np.mgrid[: exp.shape[0], : exp.shape[1]]
        exp.image = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0**2)).astype(np.float32)
        exp.mask[:] = 0
        cut = extract.extract_stamps(
            exp, stars, skymodels.NoSky(exp.shape), stamp_size=config["stamp_size"], do_remove_detected=False
        ).collect()
        b = config["boresight"]
        boresight = warp.boresight_of(
            exp.wcs,
            exp.metadata,
            ra_key=b["ra_key"],
            dec_key=b["dec_key"],
            ra_unit=b["ra_unit"],
            fixed=None,
            source=r["image"],
        )
        out = warp.warp_stamps(
            cut,
            exp.wcs,
            kernel="lanczos5",
            do_apply_transform=True,
            model_stamp_buffer=1.1,
            nb90_rots=0,
            orientation="quarter_turns",
            boresight=boresight,
        ).collect()
        img = np.nan_to_num(out.image[0].astype(float))
        cy, cx = ndimage.center_of_mass(img)
        assert abs(cx - out.header["CENTERX"][0]) < 0.02 and abs(cy - out.header["CENTERY"][0]) < 0.02


def _symmetry_centre(image, good, guess, *, rin=8.0, rout=30.0):
    """Centre of 180-degree symmetry of a halo: each good ring pixel against the image at its
    mirror point (which must be good too); the 45-degree diffraction spikes left out."""
    filled = np.where(good, image, 0.0)
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]

    def cost(c):
        r = np.hypot(xx - c[0], yy - c[1])
        angle = np.degrees(np.arctan2(yy - c[1], xx - c[0])) % 90.0
        sel = good & (r > rin) & (r < rout) & (np.abs(angle - 45.0) > 12.0)
        mirror = [2 * c[1] - yy[sel], 2 * c[0] - xx[sel]]
        values = ndimage.map_coordinates(filled, mirror, order=1)
        both = ndimage.map_coordinates(good.astype(float), mirror, order=1) > 0.999
        d = (image[sel] - values)[both]
        return np.sum(d * d / (np.abs(image[sel][both]) + np.abs(values[both]) + 10.0)) / max(both.sum(), 1)

    return optimize.minimize(cost, guess, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-10}).x


def test_the_warp_keeps_the_real_halo_where_it_is_in_the_cutout(decam_run):
    """The real star's halo has the same centre (to 0.3 px) in the final stamp as in its unwarped
    cut-out, measured with the same pixels left out (the cut-out's mask dilated over the warp's
    footprint, as the warped mask is). The halo centre itself is 0.1-2.3 px from the catalog
    position depending on which pixels are masked: these halos are not symmetric enough to place
    the star to 0.5 px, which is why the injected star above checks the centring."""
    run, config, rows = decam_run
    for r in rows:
        cut = read_stamps(run / "results" / r["exposure"] / "stamps_raw.fits")
        final = read_stamps(run / "results" / r["exposure"] / "bright_star_stamps.fits")
        bad = _bad_bits(cut.mask_planes, config["bad_mask_planes"])
        k, j = _star(cut), _star(final)
        centre = np.array(
            [cut.stars["x"][k] - cut.stars["cutout_x0"][k], cut.stars["y"][k] - cut.stars["cutout_y0"][k]]
        )
        good = ((footprint_or(np.ascontiguousarray(cut.mask[k]), 5) & bad) == 0) & np.isfinite(cut.image[k])
        in_cutout = _symmetry_centre(np.where(good, cut.image[k], 0.0), good, centre) - centre
        stamp_centre = np.array([final.header["CENTERX"], final.header["CENTERY"]], float)
        good = ((final.mask[j] & bad) == 0) & np.isfinite(final.image[j])
        in_stamp = _symmetry_centre(np.where(good, final.image[j], 0.0), good, stamp_centre) - stamp_centre
        assert np.hypot(*(in_stamp - in_cutout)) < 0.3, (r["exposure"], in_cutout, in_stamp)
