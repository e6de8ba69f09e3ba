"""Stacking: known stamps plus noise, clipping, masks, selection, regions, tiles and memory."""

import dataclasses
import logging
import tracemalloc

import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_allclose, assert_array_equal
from stack_options import stack_options

from brightstamps.errors import InputError
from brightstamps.masks import LSST_BAD_MASK_PLANES, LSST_MASK_PLANES
from brightstamps.stack import (
    StackInput,
    describe_inputs,
    read_extended_psf,
    stack_sources,
    stack_stamps,
    write_extended_psf,
)
from brightstamps.stampsfile import Stamps, open_stamps, write_stamps

BIT = {k: 1 << v for k, v in LSST_MASK_PLANES.items()}
# LSST legacy: annulus normalization, unweighted MEANCLIP
OPTIONS = stack_options()


def _profile(shape=(31, 31)):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r2 = (xx - shape[1] // 2) ** 2 + (yy - shape[0] // 2) ** 2
    return 100.0 / (1 + r2 / 4.0) ** 1.5


def _write(path, images, *, detector=0, masks=None, stars=None, variance=None):
    images = np.asarray(images, np.float32)
    n = len(images)
    masks = np.zeros(images.shape, np.int32) if masks is None else np.asarray(masks, np.int32)
    variance = np.ones(images.shape, np.float32) if variance is None else np.asarray(variance, np.float32)
    if stars is None:
        stars = Table(
            {
                "gaia_id": np.arange(n, dtype=np.int64) + 100 * detector,
                "g_mag": np.full(n, 8.0),
                "annular_flux": np.ones(n),
                "valid_annulus_fraction": np.ones(n),
            }
        )
    header = {
        "EXPOSURE": f"e{detector}",
        "DETECTOR": detector,
        "NORMED": True,
        "CENTERX": images.shape[2] // 2,
        "CENTERY": images.shape[1] // 2,
        "INNERRAD": 8,
        "OUTERRAD": 12,
        "VARNORM": True,
    }
    write_stamps(path, Stamps(images, masks, variance, stars, dict(LSST_MASK_PLANES), header))
    return str(path)


def test_copies_of_a_known_stamp_plus_noise_stack_to_the_stamp(tmp_path):
    rng = np.random.default_rng(1)
    truth = _profile()
    sigma = 0.5
    images = truth + rng.normal(scale=sigma, size=(40, 31, 31))
    models, stars = stack_stamps([_write(tmp_path / "a.fits", images)], **OPTIONS)
    m = models["DEFAULT"]
    resid = (m["image"] - truth) / np.sqrt(m["variance"])
    assert np.abs(resid).max() < 5
    assert np.std(resid) == pytest.approx(1.0, abs=0.15)  # variance = clipped var / n
    assert np.median(m["variance"]) == pytest.approx(sigma**2 / 40, rel=0.15)
    assert (m["n"] >= 39).all() and m["n"].mean() > 39.9  # 4 sigma clips a rare Gaussian value
    assert m["nstars"] == 40 and stars["used"].all()


def test_huge_outlier_is_clipped_by_meanclip_not_by_mean(tmp_path):
    rng = np.random.default_rng(2)
    images = _profile() + rng.normal(scale=0.1, size=(20, 31, 31))
    images[3, 10, 12] = 1e6
    path = _write(tmp_path / "a.fits", images)
    clipped = stack_stamps([path], **OPTIONS)[0]["DEFAULT"]
    mean = stack_stamps([path], **{**OPTIONS, "statistic": "MEAN"})[0]["DEFAULT"]
    assert clipped["image"][10, 12] == pytest.approx(_profile()[10, 12], abs=0.1)
    assert clipped["n"][10, 12] == 19
    assert mean["image"][10, 12] > 1e4


def test_masked_pixels_are_left_out_and_empty_pixels_are_no_data(tmp_path):
    images = np.stack([_profile()] * 3)
    masks = np.zeros(images.shape, np.int32)
    masks[0, 5, 5] = BIT["SAT"]  # bad: left out of that pixel
    masks[1, 5, 5] = BIT["DETECTED"]  # not bad: used, and OR-ed into the output mask
    masks[:, 0, 0] = BIT["NO_DATA"]  # nothing usable
    images[2, 7, 7] = np.nan
    m = stack_stamps([_write(tmp_path / "a.fits", images, masks=masks)], **OPTIONS)[0]["DEFAULT"]
    assert m["n"][5, 5] == 2 and m["mask"][5, 5] == BIT["DETECTED"]
    assert m["n"][7, 7] == 2
    assert np.isnan(m["image"][0, 0]) and m["mask"][0, 0] == BIT["NO_DATA"] and m["n"][0, 0] == 0


def test_selection_rules(tmp_path):
    n = 6
    stars = Table(
        {
            "gaia_id": np.arange(n, dtype=np.int64),
            "g_mag": [5.0, 9.0, 10.0, 11.0, 8.0, 8.0],
            "annular_flux": [1, 1, 1, 1, np.nan, 1.0],
            "valid_annulus_fraction": [1, 1, 1, 1, 1, 0.2],
        }
    )
    path = _write(tmp_path / "a.fits", np.stack([_profile()] * n), stars=stars)
    used = lambda **kw: list(stack_stamps([path], **{**OPTIONS, **kw})[1]["used"])  # noqa: E731
    assert used() == [True, True, True, True, False, True]  # failed star left out by default
    assert used(include_failed=True) == [True] * 6  # ... or let in, as LSST
    assert used(min_valid_annulus_fraction=0.2) == [True, True, True, True, False, True]  # strict <
    assert used(min_valid_annulus_fraction=0.3) == [True, True, True, True, False, False]
    assert used(mag_limit=10.0) == [True, True, False, False, False, True]  # strict, as selectByMag


def test_regions_and_orphan_detectors(tmp_path, caplog):
    paths = [
        _write(tmp_path / f"d{d}.fits", np.stack([_profile() * (d + 1)] * 2), detector=d) for d in range(4)
    ]
    with caplog.at_level(logging.WARNING):
        models, stars = stack_stamps(paths, **{**OPTIONS, "regions": {"nw": [0, 1], "E": [2]}})
    assert list(models) == ["NW", "E"]
    assert models["NW"]["detectors"] == [0, 1] and models["NW"]["nstars"] == 4
    assert models["E"]["nstars"] == 2
    assert_allclose(models["E"]["image"], _profile() * 3, rtol=1e-6)
    assert "detectors in no region" in caplog.text and "[3]" in caplog.text
    assert sorted(set(stars["region"])) == ["E", "NW"]


def test_result_does_not_depend_on_the_tiling(tmp_path):
    rng = np.random.default_rng(3)
    images = _profile() + rng.normal(size=(30, 31, 31))
    path = _write(tmp_path / "a.fits", images)
    big = stack_stamps([path], **OPTIONS)[0]["DEFAULT"]
    small = stack_stamps([path], **{**OPTIONS, "memory_mb": 0.01})[0]["DEFAULT"]  # 2 x 2 pixel tiles
    for key in ("image", "variance", "mask", "n"):
        assert_array_equal(big[key], small[key])


def test_memory_is_bounded_by_the_budget_not_by_the_number_of_stamps(tmp_path):
    """300 stamps of 275 x 275 (272 MB of pixels) stack within a 30 MB budget plus overheads."""
    n = 300
    rng = np.random.default_rng(4)
    base = rng.normal(size=(275, 275)).astype(np.float32)
    images = np.broadcast_to(base, (n, 275, 275))
    path = _write(tmp_path / "big.fits", images, variance=np.ones((n, 275, 275), np.float32))
    del images
    tracemalloc.start()
    models, _ = stack_stamps([path], **{**OPTIONS, "memory_mb": 30})
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert_allclose(models["DEFAULT"]["image"], base, rtol=1e-6)
    assert peak < 100, peak  # the cubes alone are 272 MB


def test_psf_fit_recovers_amplitudes_and_background(tmp_path):
    """Stars of known amplitude on polynomial backgrounds, some with their core masked."""
    rng = np.random.default_rng(5)
    shape = (41, 41)
    truth = _profile(shape)
    yy, xx = np.mgrid[0:41, 0:41]
    x, y = (xx - 20) / 20.5, (yy - 20) / 20.5
    amps = rng.uniform(50, 500, size=12)
    images, masks = [], []
    for k, a in enumerate(amps):
        bkg = rng.normal(scale=2.0) + rng.normal(scale=1.0) * x + rng.normal(scale=1.0) * y
        images.append(a * truth + bkg + rng.normal(scale=1.0, size=shape))
        m = np.zeros(shape, np.int32)
        if k % 2:
            m[(xx - 20) ** 2 + (yy - 20) ** 2 <= 9] = BIT["SAT"]  # saturated core
        masks.append(m)
    stars = Table(
        {
            "gaia_id": np.arange(12, dtype=np.int64),
            "g_mag": np.full(12, 8.0),
            "annular_flux": np.full(12, np.nan),
            "valid_annulus_fraction": np.zeros(12),
        }
    )
    path = _write(tmp_path / "a.fits", images, masks=masks, stars=stars, variance=np.ones((12, *shape)))
    # un-normalized stamps (annular flux NaN): psf_fit needs a first model from annulus stars,
    # so give it one good annulus-normalized file as well
    ref = _write(tmp_path / "ref.fits", [truth] * 3, detector=1)
    options = {
        **OPTIONS,
        "normalization": "psf_fit",
        "include_failed": True,
        "psf_fit": {**OPTIONS["psf_fit"], "background_order": 1},
    }
    models, table = stack_stamps([path, ref], **options)
    fitted = table[table["exposure"] == "e0"]
    ratio = fitted["amplitude"] / amps
    assert np.all(fitted["fit_ok"])
    assert_allclose(ratio / np.median(ratio), 1.0, rtol=0.01)
    assert np.all(np.isfinite(fitted["reduced_chi2"])) and np.all(fitted["dof"] > 1000)
    # the model is itself a stack of 15 noisy stamps: bright stars see its noise too
    assert np.median(fitted["reduced_chi2"]) == pytest.approx(1.0, abs=0.15)
    assert fitted["reduced_chi2"].max() < 2


def test_extended_psf_file_round_trip(tmp_path):
    paths = [_write(tmp_path / f"d{d}.fits", np.stack([_profile()] * 2), detector=d) for d in range(2)]
    models, stars = stack_stamps(paths, **{**OPTIONS, "regions": {"A": [0], "B": [1]}})
    write_extended_psf(
        tmp_path / "r.fits",
        models,
        stars,
        band="r",
        inputs=describe_inputs(paths),
        header={"NORMMODE": "annulus"},
    )
    back, stars2, inputs, header = read_extended_psf(tmp_path / "r.fits")
    assert list(back) == ["A", "B"] and header["BAND"] == "r" and header["NORMMODE"] == "annulus"
    for name in ("A", "B"):
        for key in ("image", "mask", "variance", "n"):
            assert_array_equal(back[name][key], models[name][key])
        assert back[name]["detectors"] == models[name]["detectors"]
        assert back[name]["nstars"] == 2
    assert list(inputs["exposure"]) == ["e0", "e1"] and len(stars2) == 4


def _empty_notices(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("[empty_extended_psf]")]


def test_a_region_that_stacks_no_star_says_why_in_a_notice_and_in_the_file(tmp_path, caplog):
    """Stars all left out by the selection: an all-NaN model, a notice naming band, region and why,
    the reason in the file's EMPTY card; stack.require_stars makes it an error."""
    stars = Table(
        {
            "gaia_id": np.arange(4, dtype=np.int64),
            "g_mag": [8.0, 11.0, 12.0, 8.0],
            "annular_flux": [1, 1, np.nan, np.nan],
            "valid_annulus_fraction": [0.1, 1, 1, 1],
        }
    )
    path = _write(tmp_path / "a.fits", np.stack([_profile()] * 4), stars=stars)
    options = {**OPTIONS, "min_valid_annulus_fraction": 0.5, "mag_limit": 10.0}
    with caplog.at_level(logging.WARNING):
        models, table = stack_stamps([path], **options, band="r")
    m = models["DEFAULT"]
    assert m["nstars"] == 0 and np.all(np.isnan(m["image"])) and not table["used"].any()
    # each star counted once, under the first cut it fails
    assert m["empty_reason"] == (
        "of the 4 stars of its 1 stamps file: "
        "1 valid_annulus_fraction < stack.min_valid_annulus_fraction (0.5); "
        "2 not brighter than stack.mag_limit (10); "
        "1 normalization failed (stack.include_failed_stars is false)"
    )
    assert _empty_notices(caplog) == [
        f"[empty_extended_psf] band r, region DEFAULT: no star was stacked ({m['empty_reason']}); "
        "its extended PSF is NaN"
    ]
    write_extended_psf(
        tmp_path / "r.fits", models, table, band="r", inputs=describe_inputs([path]), header={}
    )
    back, _, _, header = read_extended_psf(tmp_path / "r.fits")
    assert header["NSTARS1"] == 0 and header["EMPTY1"] == m["empty_reason"]
    assert back["DEFAULT"]["empty_reason"] == m["empty_reason"]
    with pytest.raises(
        InputError,
        match=r"^band r, region DEFAULT: no star was stacked "
        r"\(of the 4 stars .*\); stack.require_stars is true$",
    ):
        stack_stamps([path], **options, band="r", require_stars=True)


def test_why_no_star_was_stacked_names_the_cause(tmp_path, caplog):
    """A region with no input, stamps files without stars, and psf_fit without a first model."""
    nothing = _write(tmp_path / "none.fits", np.zeros((0, 31, 31)), detector=0)
    some = _write(tmp_path / "some.fits", np.stack([_profile()] * 2), detector=1)
    with caplog.at_level(logging.WARNING):
        models, _ = stack_stamps(
            [nothing, some], **{**OPTIONS, "regions": {"A": [0], "B": [1], "C": [5, 6]}}, band="g"
        )
    assert models["A"]["empty_reason"] == "its 1 stamps file holds no star: no catalog star was matched to it"
    assert models["B"]["nstars"] == 2 and models["B"]["empty_reason"] == ""
    assert models["C"]["empty_reason"] == "no stamps file of the band is from the region's detectors (5, 6)"
    assert [n.split(":")[0] for n in _empty_notices(caplog)] == [
        "[empty_extended_psf] band g, region A",
        "[empty_extended_psf] band g, region C",
    ]
    # an ordinary region's file keeps its cards: no EMPTY card
    write_extended_psf(
        tmp_path / "g.fits", models, Table(), band="g", inputs=describe_inputs([some]), header={}
    )
    header = read_extended_psf(tmp_path / "g.fits")[3]
    assert "EMPTY1" in header and "EMPTY2" not in header and "EMPTY3" in header
    # psf_fit: no star has a catalogue magnitude for the first model
    stars = Table(
        {
            "gaia_id": np.arange(3, dtype=np.int64),
            "g_mag": np.full(3, np.nan),
            "annular_flux": np.ones(3),
            "valid_annulus_fraction": np.ones(3),
        }
    )
    unknown = _write(tmp_path / "unknown.fits", np.stack([_profile()] * 3), stars=stars)
    psf_fit = {**OPTIONS, "normalization": "psf_fit"}
    m, table = stack_stamps([unknown], **psf_fit)
    assert m["DEFAULT"]["empty_reason"] == (
        "of the 3 stars of its 1 stamps file: 3 without a catalogue magnitude, so no first model"
    )
    assert list(table["stack_status"]) == ["not stacked: no first model"] * 3


def test_extended_psf_file_names_non_ascii_inputs_and_long_region_names_without_truncation(tmp_path):
    """INPUTS file names are escaped (FITS strings are ASCII) and read back as the paths; a region
    name too long for the NSTARS comment gives a comment naming its REGION card instead of a
    truncated one (a VerifyWarning, an error here)."""
    from astropy.io import fits

    (tmp_path / "données").mkdir()
    paths = [
        _write(tmp_path / "données" / f"d{d}.fits", np.stack([_profile()] * 2), detector=d) for d in range(2)
    ]
    long_name = "OUTER_RING_OF_DETECTORS_FAR_FROM_THE_AXIS"
    models, stars = stack_stamps(paths, **{**OPTIONS, "regions": {"A": [0], long_name: [1]}})
    write_extended_psf(
        tmp_path / "r.fits",
        models,
        stars,
        band="r",
        inputs=describe_inputs(paths),
        header={"NORMMODE": "annulus"},
    )
    back, _, inputs, header = read_extended_psf(tmp_path / "r.fits")
    assert list(inputs["file"]) == paths and list(back) == ["A", long_name]
    with fits.open(tmp_path / "r.fits") as hdul:
        comments = hdul[0].header.comments
        assert comments["NSTARS1"] == "stars stacked in A"
        assert comments["NSTARS2"] == "stars stacked in REGION2"
        assert hdul[0].header["REGION2"] == long_name


def test_stack_sources_stacks_the_selection_it_is_given(tmp_path):
    """The planes, factors and backgrounds of each file are data passed in, not state of the file:
    two stacks of one opened file with different selections do not see each other's."""
    images = np.stack([_profile() * a + b for a, b in ((1.0, 0.0), (2.0, 3.0), (4.0, 0.0), (8.0, 1.0))])
    stamps = open_stamps(_write(tmp_path / "a.fits", images))
    options = {
        "weighting": "none",
        "statistic": "MEAN",
        "num_sigma_clip": 3.0,
        "num_iter": 1,
        "bad_mask_planes": list(LSST_BAD_MASK_PLANES),
        "memory_mb": 0.01,
    }  # small tiles
    plain = stack_sources([StackInput(stamps, np.array([0, 2]), np.array([1.0, 0.25]))], **options)
    assert_allclose(plain["image"], _profile(), rtol=1e-6)
    assert (plain["n"] == 2).all()
    # planes 1 and 3 less their constant backgrounds (order 0: one term), then scaled
    backgrounds = np.array([[1.0], [3.0]])
    fitted = stack_sources(
        [StackInput(stamps, np.array([3, 1]), np.array([0.125, 0.5]), backgrounds)], **options
    )
    assert_allclose(fitted["image"], _profile(), rtol=1e-6)
    again = stack_sources([StackInput(stamps, np.array([0, 2]), np.array([1.0, 0.25]))], **options)
    for key in ("image", "variance", "mask", "n"):
        assert_array_equal(again[key], plain[key])
    empty = stack_sources([StackInput(stamps, np.zeros(0, np.int64), np.zeros(0))], **options)
    assert np.isnan(empty["image"]).all() and (empty["n"] == 0).all() and empty["image"].shape == (31, 31)
    with pytest.raises(ValueError, match=r"2 rows, but per-row arrays of lengths \[1\]"):
        StackInput(stamps, np.array([0, 1]), np.array([1.0]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        StackInput(stamps, np.array([0]), np.array([1.0])).rows = np.array([1])
