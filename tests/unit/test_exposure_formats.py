"""Exposure readers of every format, with known answers: DECam CP triplets, generic FITS, LSST calexp."""

import logging

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from numpy.testing import assert_array_equal

from brightstamps import exposure, formats, sky
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.masks import LSST_MASK_PLANES, plane_bits

SHAPE = (20, 30)
FITS_FORMAT = schema_defaults()["fits_format"]  # the config's fits_format when not set


@pytest.fixture(scope="module")
def hsc(shared_data):
    """The real HSC calexp (LSST layout, TAN-SIP, no bright star)."""
    return shared_data / "lsst_calexp_layout" / "HSC-0908120-056-small.fits"


@pytest.fixture(scope="module")
def decam_ooi(shared_data):
    """A real DECam CP image (S9, g band, TPV WCS), with its oow and ood files beside it."""
    return shared_data / "decam_testcase6" / "images" / "c4d_181214_050844_ooi_g_ls9.S9.fits"


def tan_header(shape=SHAPE):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cd = [[-7.3e-5, 0.0], [0.0, 7.3e-5]]
    return w.to_header()


def primary(**cards):
    h = fits.Header()
    h["MJD-OBS"] = 58466.2144
    h["DATE-OBS"] = "2018-12-14T05:08:44.5"
    h["PLVER"] = "V4.8.2a"
    for k, v in cards.items():
        h[k] = v
    return fits.PrimaryHDU(header=h)


def write_triplet(
    directory, *, dq, weight, image=None, plver="V4.8.2a", name="c4d_181214_050844_ooi_g_ls9.fits"
):
    """A tiny DECam CP ooi/oow/ood triplet, each plane in HDU 1 (EXTNAME S9)."""
    image = np.full(SHAPE, 300.0, np.float32) if image is None else image
    paths = {}
    for kind, data in (("ooi", image), ("oow", weight), ("ood", dq)):
        path = directory / name.replace("_ooi_", f"_{kind}_")
        hdu = fits.ImageHDU(data, header=tan_header() if kind == "ooi" else None, name="S9")
        fits.HDUList([primary(PLVER=plver), hdu]).writeto(path)
        paths[kind] = path
    return paths


def planes_at(exp, y, x):
    return {name for name, bit in exp.mask_planes.items() if exp.mask[y, x] & (1 << bit)}


# --- DECam Community Pipeline --------------------------------------------------------------------


def test_decam_cp_codes_map_onto_named_planes_and_weights_onto_variance(tmp_path):
    dq = np.zeros(SHAPE, np.int32)
    for code in range(1, 9):
        dq[2, code] = code
    weight = np.full(SHAPE, 4.0, np.float32)
    weight[10, 10] = 0.0
    paths = write_triplet(tmp_path, dq=dq, weight=weight)
    exp = exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")
    expected = {
        1: "BAD",
        2: "NO_DATA",
        3: "SAT",
        4: "BLEED",
        5: "CR",
        6: "LOW_WEIGHT",
        7: "DIFF_DETECT",
        8: "STREAK",
    }
    for code, plane in expected.items():
        assert planes_at(exp, 2, code) == {plane}, code
    assert planes_at(exp, 5, 5) == set()
    # LSST's own bit numbers for LSST's planes; the CP's extra planes on free bits
    assert {k: exp.mask_planes[k] for k in LSST_MASK_PLANES} == LSST_MASK_PLANES
    assert len(set(exp.mask_planes.values())) == len(exp.mask_planes)
    # weight 4 -> variance 0.25; weight 0 -> NO_DATA and variance +inf
    assert exp.variance[5, 5] == np.float32(0.25)
    assert planes_at(exp, 10, 10) == {"NO_DATA"} and exp.variance[10, 10] == np.inf
    assert exp.variance.dtype == np.float32 and exp.mask.dtype == np.int32
    # sky not subtracted; MJD-OBS / DATE-OBS kept for proper motions; provenance
    assert exp.sky_subtracted is False
    assert exp.metadata["MJD-OBS"] == 58466.2144 and exp.metadata["DATE-OBS"].startswith("2018-12-14")
    assert exposure.observation_epoch(exp.metadata).mjd == pytest.approx(58466.2144)
    assert exp.cards["EXPFMT"][0] == "decam_cp" and exp.cards["VARSRC"][0] == "weight"
    assert exp.files == {"image": str(paths["ooi"]), "mask": str(paths["ood"]), "weight": str(paths["oow"])}


def test_decam_cp_before_version_3_5_reads_the_dq_as_bits(tmp_path):
    dq = np.zeros(SHAPE, np.int32)
    dq[3, 3] = 2 | 16  # saturated cosmic ray
    dq[4, 4] = 64
    paths = write_triplet(tmp_path, dq=dq, weight=np.ones(SHAPE, np.float32), plver="V3.4.1")
    exp = exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")
    assert planes_at(exp, 3, 3) == {"SAT", "CR"} and planes_at(exp, 4, 4) == {"BLEED"}
    assert formats.cp_uses_codes("V4.8.2a") and formats.cp_uses_codes("DES 3.5.0")
    assert not formats.cp_uses_codes("V3.4.1") and formats.cp_uses_codes(None)


def test_decam_cp_unknown_code_is_one_line(tmp_path):
    dq = np.zeros(SHAPE, np.int32)
    dq[1, 1] = 9
    paths = write_triplet(tmp_path, dq=dq, weight=np.ones(SHAPE, np.float32))
    with pytest.raises(
        InputError, match=r"_ood_.*mask value 9 \(1 pixels\) is not in the DECam CP codes"
    ) as err:
        exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["oow", "ood"])
def test_decam_cp_missing_companion_is_named(tmp_path, kind):
    paths = write_triplet(tmp_path, dq=np.zeros(SHAPE, np.int32), weight=np.ones(SHAPE, np.float32))
    paths[kind].unlink()
    with pytest.raises(InputError, match=rf"{paths[kind].name}: DECam CP .*\({kind}\) file not found") as err:
        exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")
    assert "\n" not in str(err.value)


def test_decam_cp_companions_by_name_or_by_column(tmp_path):
    files = formats.exposure_files("/d/c4d_x_ooi_g_v1.fits.fz", fmt="decam_cp")
    assert files == {
        "image": "/d/c4d_x_ooi_g_v1.fits.fz",
        "mask": "/d/c4d_x_ood_g_v1.fits.fz",
        "weight": "/d/c4d_x_oow_g_v1.fits.fz",
    }
    files = formats.exposure_files("/a_ooi_/img.fits", fmt="decam_cp", mask="m.fits", weight="w.fits")
    assert files == {"image": "/a_ooi_/img.fits", "mask": "m.fits", "weight": "w.fits"}
    assert "weight" not in formats.exposure_files("x_ooi_.fits", fmt="decam_cp", variance="v.fits")
    with pytest.raises(
        InputError, match=r"/a_ooi_/img.fits: format decam_cp finds the ood file .* give the mask column"
    ):
        formats.exposure_files("/a_ooi_/img.fits", fmt="decam_cp")
    with pytest.raises(InputError, match="not both"):
        formats.exposure_files("x.fits", fmt="fits", variance="v.fits", weight="w.fits")


@pytest.mark.parametrize("kind", ["oow", "ood"])
def test_decam_cp_shape_mismatch_is_one_line(tmp_path, kind):
    paths = write_triplet(tmp_path, dq=np.zeros(SHAPE, np.int32), weight=np.ones(SHAPE, np.float32))
    with fits.open(paths[kind], mode="update") as hdul:
        hdul[1].data = hdul[1].data[:-1]
    with pytest.raises(
        InputError, match=rf"{paths[kind].name}: .* plane has shape \(19, 30\), the image \(20, 30\)"
    ):
        exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")


def test_decam_cp_ccd_chosen_by_extname_in_whole_exposure_files(tmp_path):
    """Whole-exposure CP files hold one CCD per HDU: hdu 'S9' reads that CCD from all three."""
    ooi = tmp_path / "c4d_1_ooi_g_v1.fits"
    for kind in ("ooi", "oow", "ood"):
        hdus = [primary()]
        for value, name in ((1, "S4"), (2, "S9")):
            data = np.full(SHAPE, value, np.int32 if kind == "ood" else np.float32)
            if kind == "ood":
                data[:] = value * 3  # S4: code 3 (SAT); S9: code 6 (LOW_WEIGHT)
            hdus.append(fits.ImageHDU(data, header=tan_header() if kind == "ooi" else None, name=name))
        fits.HDUList(hdus).writeto(str(ooi).replace("_ooi_", f"_{kind}_"))
    exp = exposure.read_exposure(str(ooi), fmt="decam_cp", hdu="S9")
    assert (exp.image == 2).all() and (exp.variance == np.float32(0.5)).all()
    assert planes_at(exp, 0, 0) == {"LOW_WEIGHT"}
    assert exposure.read_exposure(str(ooi), fmt="decam_cp", hdu="2").image[0, 0] == 2
    with pytest.raises(InputError, match=r"has no HDU named 'N4' \(EXTNAMEs: S4, S9\)"):
        exposure.read_exposure(str(ooi), fmt="decam_cp", hdu="N4")
    _, meta = exposure.read_exposure_header(str(ooi), fmt="decam_cp", hdu="S9")
    assert (meta["NAXIS2"], meta["NAXIS1"]) == SHAPE and meta["MJD-OBS"] == 58466.2144


def test_real_decam_cp_triplet_is_read_with_its_tpv_wcs_and_epoch(decam_ooi):
    exp = exposure.read_exposure(str(decam_ooi), fmt="decam_cp")
    with fits.open(decam_ooi) as hdul:
        assert hdul[1].header["CTYPE1"] == "RA---TPV"
        raw = WCS(hdul[1].header)
    assert np.allclose(
        exp.wcs.all_pix2world([[50.0, 50.0]], 0), raw.all_pix2world([[50.0, 50.0]], 0), rtol=0, atol=1e-12
    )
    assert exp.metadata["MJD-OBS"] == pytest.approx(58466.21440415)
    # every flagged pixel of the CP has weight 0: NO_DATA there, SAT on the star's core
    sat = (exp.mask & (1 << exp.mask_planes["SAT"])) != 0
    no_data = (exp.mask & (1 << exp.mask_planes["NO_DATA"])) != 0
    assert sat.sum() == 1352 and (no_data >= sat).all() and np.isinf(exp.variance[no_data]).all()
    assert np.isfinite(exp.variance[~no_data]).all()
    _, meta = exposure.read_exposure_header(str(decam_ooi), fmt="decam_cp")
    assert (meta["NAXIS2"], meta["NAXIS1"]) == exp.shape


# --- generic FITS ------------------------------------------------------------------------------------


def noisy(shape=SHAPE, level=100.0, seed=0):
    """A sky of 100 ADU with noise 3 ADU (an estimated variance needs measurable noise)."""
    return (level + np.random.default_rng(seed).normal(0, 3.0, size=shape)).astype(np.float32)


def write_fits(path, data, *, header=None, hdu=0, extra=None):
    header = tan_header(data.shape) if header is None else header
    for k, v in (extra or {}).items():
        header[k] = v
    if hdu == 0:
        fits.PrimaryHDU(data, header=header).writeto(path)
    else:
        fits.HDUList(
            [
                fits.PrimaryHDU(),
                fits.BinTableHDU.from_columns([fits.Column("a", "J", array=[1])]),
                fits.ImageHDU(data, header=header, name="SCI"),
            ]
        ).writeto(path)
    return str(path)


def test_fits_mask_values_are_mapped_by_the_config_table(tmp_path):
    image = write_fits(tmp_path / "img.fits", noisy())
    mask = np.zeros(SHAPE, np.int16)
    mask[1, 1], mask[2, 2], mask[3, 3] = 1, 2, 7
    mpath = write_fits(tmp_path / "mask.fits", mask, header=fits.Header())
    options = {"mask_encoding": "values", "mask_table": {"1": "BAD", "2": "SAT", "7": "HOT_PIXEL"}}
    exp = exposure.read_exposure(
        image, mask=mpath, weight=None, fmt="fits", fits_options={**FITS_FORMAT, **options, "gain": 2.0}
    )
    assert planes_at(exp, 1, 1) == {"BAD"} and planes_at(exp, 2, 2) == {"SAT"}
    assert planes_at(exp, 3, 3) == {"HOT_PIXEL"} and planes_at(exp, 0, 0) == set()
    assert exp.mask_planes["BAD"] == 0 and exp.mask_planes["HOT_PIXEL"] not in LSST_MASK_PLANES.values()
    del options["mask_table"]["7"]
    with pytest.raises(
        InputError,
        match=r"mask.fits: mask value 7 \(1 pixels\) is not in fits_format.mask_table "
        r"\(it maps 1, 2\)",
    ):
        exposure.read_exposure(
            image, mask=mpath, fmt="fits", fits_options={**FITS_FORMAT, **options, "gain": 2.0}
        )


def test_fits_mask_bits_are_mapped_by_the_config_table(tmp_path):
    image = write_fits(tmp_path / "img.fits", noisy())
    mask = np.zeros(SHAPE, np.int32)
    mask[1, 1] = 1 | 4
    mask[2, 2] = -(2**31)  # bit 31 of a signed mask
    mpath = write_fits(tmp_path / "mask.fits", mask, header=fits.Header())
    options = {"mask_encoding": "bits", "mask_table": {0: "BAD", 2: "CR", 31: "SUSPECT"}, "gain": 1.0}
    exp = exposure.read_exposure(image, mask=mpath, fmt="fits", fits_options={**FITS_FORMAT, **options})
    assert planes_at(exp, 1, 1) == {"BAD", "CR"} and planes_at(exp, 2, 2) == {"SUSPECT"}
    options["mask_table"] = {0: "BAD", 31: "SUSPECT"}
    with pytest.raises(
        InputError, match=r"mask bit 2 \(value 4, 1 pixels\) is not in fits_format.mask_table"
    ):
        exposure.read_exposure(image, mask=mpath, fmt="fits", fits_options={**FITS_FORMAT, **options})


def test_fits_weight_or_variance_files(tmp_path):
    image = write_fits(tmp_path / "img.fits", np.ones(SHAPE, np.float32))
    weight = np.full(SHAPE, 4.0, np.float32)
    weight[0, 0] = 0.0
    wpath = write_fits(tmp_path / "w.fits", weight, header=fits.Header())
    exp = exposure.read_exposure(image, weight=wpath, fmt="fits", fits_options=FITS_FORMAT)
    assert exp.variance[5, 5] == np.float32(0.25) and exp.variance[0, 0] == np.inf
    assert planes_at(exp, 0, 0) == {"NO_DATA"} and exp.cards["VARSRC"][0] == "weight"
    vpath = write_fits(tmp_path / "v.fits", np.full(SHAPE, 9.0, np.float32), header=fits.Header())
    exp = exposure.read_exposure(image, variance=vpath, fmt="fits", fits_options=FITS_FORMAT)
    assert (exp.variance == 9).all() and exp.cards["VARSRC"][0] == "variance file"
    short = write_fits(tmp_path / "short.fits", np.ones((5, 5), np.float32), header=fits.Header())
    with pytest.raises(
        InputError, match=r"short.fits: weight plane has shape \(5, 5\), the image \(20, 30\)"
    ):
        exposure.read_exposure(image, weight=short, fmt="fits", fits_options=FITS_FORMAT)


def test_fits_estimated_variance_is_sky_noise_plus_poisson(tmp_path):
    rng = np.random.default_rng(5)
    shape = (200, 200)
    data = 100.0 + rng.normal(0, 5.0, size=shape)
    data[80:120, 80:120] += 400.0  # a flat source: Poisson term 400 / gain
    path = write_fits(tmp_path / "img.fits", data.astype(np.float32), extra={"GAIN": 2.0})
    exp = exposure.read_exposure(path, fmt="fits", fits_options=FITS_FORMAT)
    assert exp.cards["VARSRC"][0] == "estimated"
    assert exp.cards["VARGAIN"][0] == 2.0 and exp.cards["VARGSRC"] == "header GAIN"
    sigma, level = exp.cards["VARSKYSG"][0], exp.cards["VARSKYLV"][0]
    assert sigma == pytest.approx(5.0, rel=0.03) and level == pytest.approx(100.0, abs=0.3)
    assert np.median(exp.variance[:50, :50]) == pytest.approx(25.0, rel=0.06)
    assert np.median(exp.variance[90:110, 90:110]) == pytest.approx(25.0 + 400.0 / 2.0, rel=0.03)
    # the config's gain wins over the header
    exp = exposure.read_exposure(path, fmt="fits", fits_options={**FITS_FORMAT, "gain": 4.0})
    assert exp.cards["VARGAIN"][0] == 4.0 and exp.cards["VARGSRC"] == "fits_format.gain"


@pytest.mark.parametrize("options", [{"gain": 4.0}, {"gain_keyword": "DETECTOR GAIN OF THE LEFT AMPLIFIER"}])
def test_estimated_variance_cards_need_no_truncation(tmp_path, options):
    """Every comment fits on its card: astropy would truncate it with a VerifyWarning, which ended
    up in every job's log (and is an error here)."""
    data = 100.0 + np.random.default_rng(5).normal(0, 5.0, size=(100, 100))
    path = write_fits(
        tmp_path / "img.fits",
        data.astype(np.float32),
        extra={"HIERARCH DETECTOR GAIN OF THE LEFT AMPLIFIER": 2.0},
    )
    exp = exposure.read_exposure(path, fmt="fits", fits_options={**FITS_FORMAT, **options})
    header = fits.Header()
    header.update(exp.cards)
    back = fits.Header.fromstring(header.tostring())
    for key, card in exp.cards.items():
        value, comment = card if isinstance(card, tuple) else (card, "")
        assert (back[key], back.comments[key]) == (value, comment)
    origin = "fits_format.gain" if "gain" in options else "header DETECTOR GAIN OF THE LEFT AMPLIFIER"
    assert back["VARGSRC"] == origin


def test_fits_estimated_variance_needs_a_gain(tmp_path):
    path = write_fits(tmp_path / "img.fits", np.ones(SHAPE, np.float32))
    with pytest.raises(
        InputError, match=r"needs the gain: set fits_format.gain, or fits_format.gain_keyword .*'GAIN'"
    ):
        exposure.read_exposure(path, fmt="fits", fits_options=FITS_FORMAT)


def test_fits_saturation_from_the_header_or_the_config(tmp_path):
    data = noisy()
    data[4, 4], data[5, 5] = 1000.0, 999.0
    path = write_fits(tmp_path / "img.fits", data, extra={"SATURATE": 1000.0, "GAIN": 1.0})
    exp = exposure.read_exposure(path, fmt="fits", fits_options=FITS_FORMAT)
    assert planes_at(exp, 4, 4) == {"SAT"} and planes_at(exp, 5, 5) == set()
    exp = exposure.read_exposure(path, fmt="fits", fits_options={**FITS_FORMAT, "saturation": 999.0})
    assert planes_at(exp, 5, 5) == {"SAT"}
    exp = exposure.read_exposure(
        path, fmt="fits", fits_options={**FITS_FORMAT, "saturation_keyword": "NOSUCH"}
    )
    assert not exp.mask.any()


def test_fits_hdu_default_is_the_first_2d_hdu_and_nan_pixels_are_no_data(tmp_path):
    data = noisy()
    data[3, 4] = np.nan
    path = write_fits(tmp_path / "img.fits", data, hdu=2, extra={"GAIN": 1.0, "MJD-OBS": 60000.5})
    for hdu in (None, 2, "SCI", "sci"):
        exp = exposure.read_exposure(path, fmt="fits", hdu=hdu, fits_options=FITS_FORMAT)
        assert exp.shape == SHAPE and exp.metadata["MJD-OBS"] == 60000.5
    assert planes_at(exp, 3, 4) == {"NO_DATA"} and exp.variance[3, 4] == np.inf
    assert exp.sky_subtracted is False
    assert exposure.read_exposure(
        path, fmt="fits", fits_options={**FITS_FORMAT, "sky_subtracted": True}
    ).sky_subtracted
    wcs, meta = exposure.read_exposure_header(path, fmt="fits")
    assert (meta["NAXIS2"], meta["NAXIS1"]) == SHAPE and wcs.has_celestial


def test_fits_without_a_celestial_wcs_in_the_given_hdu_is_one_line(tmp_path):
    path = tmp_path / "img.fits"
    fits.HDUList([fits.PrimaryHDU(noisy(), header=tan_header()), fits.ImageHDU(noisy(), name="RAW")]).writeto(
        path
    )
    exposure.read_exposure(str(path), fmt="fits", fits_options={**FITS_FORMAT, "gain": 1.0})  # HDU 0 has one
    with pytest.raises(InputError, match=r"img.fits \(HDU 1\): the image header has no celestial WCS") as err:
        exposure.read_exposure(str(path), fmt="fits", hdu=1, fits_options={**FITS_FORMAT, "gain": 1.0})
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"\(HDU 1\): the image header has no celestial WCS"):
        exposure.read_exposure_header(str(path), fmt="fits", hdu="RAW")
    with pytest.raises(InputError, match=r"has no HDU 5 \(it has 2: 0-1\)"):
        exposure.read_exposure(str(path), fmt="fits", hdu=5, fits_options=FITS_FORMAT)


# --- LSST calexp -----------------------------------------------------------------------------------


def test_real_hsc_calexp_is_read_with_its_named_planes_and_tan_sip_wcs(hsc):
    exp = exposure.read_exposure(str(hsc), fmt="lsst_calexp")
    assert exp.mask_planes == {
        "BAD": 0,
        "SAT": 1,
        "INTRP": 2,
        "CR": 3,
        "EDGE": 4,
        "DETECTED": 5,
        "DETECTED_NEGATIVE": 6,
        "SUSPECT": 7,
        "CROSSTALK": 8,
        "NO_DATA": 9,
        "UNMASKEDNAN": 10,
    }
    assert exp.shape == (200, 200) and exp.sky_subtracted
    assert list(exp.wcs.wcs.ctype) == ["RA---TAN-SIP", "DEC--TAN-SIP"] and exp.wcs.sip is not None
    assert exp.wcs.sip.a_order == 3
    with fits.open(hsc) as hdul:
        assert_array_equal(exp.mask, hdul[2].data.astype(np.int32))
        assert_array_equal(exp.variance, hdul[3].data)
    detected = (exp.mask & (1 << exp.mask_planes["DETECTED"])) != 0
    assert 0 < detected.mean() < 0.5  # sources are flagged
    wcs, meta = exposure.read_exposure_header(str(hsc), fmt="lsst_calexp")
    assert (meta["NAXIS2"], meta["NAXIS1"]) == (200, 200) and wcs.sip is not None
    pix = np.array([[10.0, 20.0], [150.0, 180.0]])
    assert np.allclose(wcs.all_world2pix(exp.wcs.all_pix2world(pix, 0), 0), pix, atol=1e-6)


def test_lsst_calexp_refuses_an_hdu_and_takes_a_weight(tmp_path):
    with pytest.raises(InputError, match="the hdu column is for decam_cp and fits"):
        exposure.read_exposure("x.fits", hdu=2, fmt="lsst_calexp")
    from brightstamps import simulate

    path = tmp_path / "e.fits"
    simulate.simulate_exposure(
        path,
        detector=0,
        yaw_deg=0.0,
        size=300,
        stars={"x": [], "y": [], "flux": []},
        seed=1,
        cosmic_rays=False,
    )
    weight = np.full((300, 300), 2.0, np.float32)
    weight[7, 8] = 0
    fits.PrimaryHDU(weight).writeto(tmp_path / "w.fits")
    exp = exposure.read_exposure(str(path), weight=str(tmp_path / "w.fits"), fmt="lsst_calexp")
    assert exp.variance[0, 0] == np.float32(0.5) and exp.variance[7, 8] == np.inf
    assert exp.mask[7, 8] & (1 << exp.mask_planes["NO_DATA"])
    assert exp.cards["VARSRC"][0] == "weight"


def test_format_mask_planes_are_known_to_the_config_lists():
    """bad_mask_planes may name BLEED or STREAK even for exposures whose mask has no such plane."""
    assert plane_bits(LSST_MASK_PLANES, ["BAD", "BLEED", "STREAK"], field="bad_mask_planes") == 1
    with pytest.raises(InputError, match="unknown mask plane 'BLEEDING'"):
        plane_bits(LSST_MASK_PLANES, ["BLEEDING"], field="bad_mask_planes")


# --- sky -------------------------------------------------------------------------------------------------

FIT = {
    "enabled": False,
    "mesh_size": 8,
    "num_sigma_clip": 3.0,
    "num_iter": 3,
    "mask_planes": ["BAD", "NO_DATA"],
    "min_valid_fraction": 0.3,
}


def test_a_format_whose_sky_is_not_subtracted_always_gets_a_fitted_sky(tmp_path, caplog):
    paths = write_triplet(tmp_path, dq=np.zeros(SHAPE, np.int32), weight=np.ones(SHAPE, np.float32))
    exp = exposure.read_exposure(str(paths["ooi"]), fmt="decam_cp")
    with caplog.at_level(logging.INFO, logger="brightstamps.sky"):
        model = sky.make_sky_model(exp, sky_model_path=None, do_apply_sky_corr=True, fit=FIT)
    assert model.mode == "FIT" and np.allclose(model.evaluate(0, 20, 0, 30), 300.0)
    assert "sky is not subtracted in this decam_cp image" in caplog.text
    # a given sky model is used instead
    fits.PrimaryHDU(np.full(SHAPE, 7.0, np.float32)).writeto(tmp_path / "sky.fits")
    model = sky.make_sky_model(
        exp, sky_model_path=str(tmp_path / "sky.fits"), do_apply_sky_corr=True, fit=FIT
    )
    assert model.mode == "GIVEN"
    # an LSST calexp is left alone unless sky_fit.enabled
    exp.sky_subtracted = True
    assert sky.make_sky_model(exp, sky_model_path=None, do_apply_sky_corr=True, fit=FIT).mode == "NONE"


def test_generic_fits_copy_of_a_decam_ooi_flags_the_cp_saturated_pixels(tmp_path, decam_ooi):
    """HDU 1 of a real ooi as a plain FITS: its SATURATE card flags what the CP's ood calls saturated."""
    with fits.open(decam_ooi) as hdul:
        header = hdul[1].header.copy()
        for key in ("XTENSION", "PCOUNT", "GCOUNT", "INHERIT", "EXTNAME"):
            header.remove(key, ignore_missing=True)
        fits.PrimaryHDU(hdul[1].data, header=header).writeto(tmp_path / "plain.fits")
    exp = exposure.read_exposure(
        str(tmp_path / "plain.fits"), fmt="fits", fits_options={**FITS_FORMAT, "gain_keyword": "ARAWGAIN"}
    )
    cp = exposure.read_exposure(str(decam_ooi), fmt="decam_cp")
    ours = (exp.mask & (1 << exp.mask_planes["SAT"])) != 0
    theirs = (cp.mask & (1 << cp.mask_planes["SAT"])) != 0
    assert ours.sum() == 1349 and theirs.sum() == 1352 and (ours <= theirs).all()
    assert exp.cards["VARSRC"][0] == "estimated" and exp.cards["VARGAIN"][0] == 4.5
    # the estimated sky noise is close to the CP's weight map (9.65 ADU in the sky)
    assert 9.65 < exp.cards["VARSKYSG"][0] < 1.25 * 9.65


# --- the formats in one place ---------------------------------------------------------------------------


def _hdus(*specs):
    """An HDU list: None a primary HDU without data, a shape an image HDU (EXTNAME IMn), 'table' a table."""
    hdus = []
    for i, spec in enumerate(specs):
        if spec == "table":
            hdus.append(fits.BinTableHDU.from_columns([fits.Column("a", "J", array=[1])], name=f"TAB{i}"))
        elif i == 0:
            hdus.append(fits.PrimaryHDU(None if spec is None else np.zeros(spec, np.float32)))
        else:
            hdus.append(fits.ImageHDU(np.zeros(spec, np.float32), name=f"IM{i}"))
    return fits.HDUList(hdus)


def test_find_hdu_is_the_one_rule_of_every_format():
    calexp = _hdus(None, (4, 5), (4, 5), (4, 5))
    assert [
        formats.find_hdu(calexp, fmt="lsst_calexp", plane=p, path="e.fits")
        for p in ("image", "mask", "variance")
    ] == [1, 2, 3]
    cp = _hdus(None, (4, 5), (4, 5))
    assert formats.find_hdu(cp, fmt="decam_cp", path="ooi.fits") == 1  # the CP's single-CCD files
    assert formats.find_hdu(cp, fmt="decam_cp", plane="data-quality", path="ood.fits") == 1
    assert formats.find_hdu(cp, fmt="decam_cp", hdu="im2", path="ooi.fits") == 2  # EXTNAME, any case
    assert formats.find_hdu(cp, fmt="decam_cp", hdu="2", path="ooi.fits") == 2  # the table's text
    generic = _hdus(None, "table", (4, 5))
    assert formats.find_hdu(generic, fmt="fits", path="img.fits") == 2  # the first 2-D HDU
    assert formats.find_hdu(generic, fmt="fits", hdu="", path="img.fits") == 2  # an empty cell
    assert formats.find_hdu(_hdus((4, 5)), fmt=None, plane="mask", path="m.fits") == 0  # a separate file
    for hdul, kw, message in (
        (
            _hdus(None),
            {"fmt": "lsst_calexp"},
            "e.fits: HDU 1 should hold the 2-D image plane (LSST calexp layout: 1 image, 2 mask, 3 variance)",
        ),
        (
            _hdus(None, (4, 5), (2, 4, 5)),
            {"fmt": "lsst_calexp", "plane": "mask"},
            "e.fits: HDU 2 should hold the 2-D mask plane (LSST calexp layout: 1 image, 2 mask, 3 variance)",
        ),
        (
            calexp,
            {"fmt": "lsst_calexp", "hdu": 2},
            "e.fits: format lsst_calexp has a fixed layout (LSST calexp layout: 1 image, 2 mask, 3 variance); "
            "the hdu column is for decam_cp and fits (it gives '2')",
        ),
        (
            _hdus(None, "table"),
            {"fmt": "decam_cp"},
            "e.fits: HDU 1 should hold the 2-D image plane (DECam CP: one CCD per HDU)",
        ),
        (cp, {"fmt": "decam_cp", "hdu": 3}, "e.fits: has no HDU 3 (it has 3: 0-2)"),
        (cp, {"fmt": "fits", "hdu": "S9"}, "e.fits: has no HDU named 'S9' (EXTNAMEs: IM1, IM2)"),
        (_hdus(None, "table"), {"fmt": "fits"}, "e.fits: no HDU holds a 2-D image"),
        (
            cp,
            {"fmt": "raw"},
            "e.fits: format 'raw' is not supported (supported: lsst_calexp, decam_cp, fits)",
        ),
    ):
        with pytest.raises(InputError) as err:
            formats.find_hdu(hdul, path="e.fits", **kw)
        assert str(err.value) == message


def test_the_readers_of_pixels_and_of_headers_agree_on_the_hdu(tmp_path):
    """read_exposure, read_exposure_header and the table's header_detector take the HDU from
    find_hdu: the same HDU, and the same line when it is wrong (the header reader said less, and
    took an hdu for lsst_calexp silently)."""
    from brightstamps import exposures_table

    path = tmp_path / "e.fits"
    _hdus(None, "table").writeto(path)
    layout = "LSST calexp layout: 1 image, 2 mask, 3 variance"
    expected = f"{path}: HDU 1 should hold the 2-D image plane ({layout})"
    for read in (
        lambda: exposure.read_exposure(str(path), fmt="lsst_calexp"),
        lambda: exposure.read_exposure_header(str(path), fmt="lsst_calexp"),
        lambda: exposures_table.header_detector(str(path), fmt="lsst_calexp"),
    ):
        with pytest.raises(InputError) as err:
            read()
        assert str(err.value) == expected
    with pytest.raises(InputError, match="format lsst_calexp has a fixed layout"):
        exposure.read_exposure_header(str(path), fmt="lsst_calexp", hdu="1")
    generic = write_fits(tmp_path / "img.fits", noisy(), hdu=2, extra={"GAIN": 1.0, "CCDNUM": 7})
    exp = exposure.read_exposure(generic, fmt="fits", fits_options=FITS_FORMAT)
    _, meta = exposure.read_exposure_header(generic, fmt="fits")
    assert exp.metadata["EXTNAME"] == meta["EXTNAME"] == "SCI"
    assert exposures_table.header_detector(generic, fmt="fits") == 7


def test_each_format_says_what_it_is():
    """The table of formats is the one the schema, the readers and the mask planes follow."""
    import yaml

    from brightstamps.configref import SCHEMA
    from brightstamps.masks import EXTRA_MASK_PLANES

    table_schema = yaml.safe_load((SCHEMA.parent / "exposures.schema.yaml").read_text())
    assert table_schema["properties"]["format"]["enum"] == list(formats.FORMATS)
    assert table_schema["properties"]["format"]["default"] in formats.FORMATS
    assert {name: f.sky_subtracted for name, f in formats.FORMAT_TABLE.items()} == {
        "lsst_calexp": True,
        "decam_cp": False,
        "fits": None,
    }
    # every plane of the DECam CP's codes and bits is a plane the config lists may name
    known = set(LSST_MASK_PLANES) | set(EXTRA_MASK_PLANES)
    assert set(formats.DECAM_CP_CODES.values()) | set(formats.DECAM_CP_OLD_BITS.values()) <= known
    assert set(formats.DECAM_CP_CODES.values()) - set(LSST_MASK_PLANES) == set(EXTRA_MASK_PLANES)


def test_fits_options_are_the_configs_not_the_readers(tmp_path):
    """Format fits reads with the config's fits_format, every field of it: no defaults of its own."""
    path = write_fits(tmp_path / "img.fits", noisy(), extra={"GAIN": 1.0})
    with pytest.raises(TypeError, match="format fits needs fits_options, the config's fits_format"):
        exposure.read_exposure(path, fmt="fits")
    with pytest.raises(KeyError, match="saturation_keyword"):
        exposure.read_exposure(
            path, fmt="fits", fits_options={k: v for k, v in FITS_FORMAT.items() if k != "saturation_keyword"}
        )


def test_masks_and_formats_import_what_they_need_only(repo):
    """formats is read at DAG build (standard library only); masks does not import formats."""
    import subprocess
    import sys

    code = (
        "import sys; import brightstamps.formats; "
        "heavy = [m for m in ('numpy', 'astropy') if m in sys.modules]; "
        "import brightstamps.masks; print(heavy, 'brightstamps.formats' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    ).stdout
    assert out.strip() == "[] True"
    code = "import sys; import brightstamps.masks; print('brightstamps.formats' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    ).stdout
    assert out.strip() == "False"
