"""Exposures that calibrated data must not be: corrupt structural or WCS cards, a non-number MJD-OBS,
mask bits without a name, unusable variances (issue 13, items 9 and 12)."""

import gzip
import logging
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from brightstamps import exposure
from brightstamps.configref import schema_defaults
from brightstamps.errors import InputError
from brightstamps.files import open_fits
from brightstamps.masks import LSST_MASK_PLANES

SHAPE = (20, 30)
FITS_FORMAT = schema_defaults()["fits_format"]  # the config's fits_format when not set


def tan_wcs(shape=SHAPE):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    w.wcs.cd = [[-7.3e-5, 0.0], [0.0, 7.3e-5]]
    return w


def write_calexp(path, *, mask=None, variance=None, planes=None, shape=SHAPE):
    """A small LSST calexp (image, mask with MP_* cards, variance) through the package's writer."""
    rng = np.random.default_rng(3)
    image = (100.0 + rng.normal(0, 5, size=shape)).astype(np.float32)
    exp = exposure.Exposure(
        image=image,
        mask=np.zeros(shape, np.int32) if mask is None else mask,
        variance=np.full(shape, 25.0, np.float32) if variance is None else variance,
        wcs=tan_wcs(shape),
        metadata=fits.Header(),
        mask_planes=dict(LSST_MASK_PLANES if planes is None else planes),
    )
    exposure.write_exposure(path, exp, primary_cards=[("MJD-OBS", 60000.5)])
    return str(path)


def set_card(path, hdu, keyword, value_text, *more):
    """Overwrite cards' values in the file's bytes (astropy would refuse to write corrupt ones):
    ``set_card(path, hdu, keyword, text, keyword2, text2, ...)``."""
    with fits.open(path) as hdul:
        start = hdul[hdu].fileinfo()["hdrLoc"]
        end = hdul[hdu].fileinfo()["datLoc"]
    data = bytearray(Path(path).read_bytes())
    cards = dict(zip((keyword, *more[::2]), (value_text, *more[1::2]), strict=True))
    for at in range(start, end, 80):
        key = data[at : at + 8].decode().rstrip()
        if key in cards:
            data[at : at + 80] = f"{key:<8}= {cards.pop(key):>20}".ljust(80).encode()
    assert not cards, f"{list(cards)} not in HDU {hdu}"
    Path(path).write_bytes(bytes(data))


def one_line(call, match):
    with pytest.raises(InputError, match=match) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


# --- item 12: corrupt headers ---------------------------------------------------------------------------


def test_bitpix_that_does_not_match_the_data_is_one_line_naming_the_hdus(tmp_path):
    """BITPIX -32 -> 16 halves HDU 1's data: HDU 2's "header" starts inside it (astropy read the
    image as 16-bit numbers, then failed on the mask with "'_ValidHDU' object has no attribute 'data'")."""
    path = write_calexp(tmp_path / "e.fits", shape=(48, 60))  # 4 blocks of float32, 2 of int16
    set_card(path, 1, "BITPIX", "16")
    expected = (
        r"e.fits: HDU 2 \(at byte 11520, after the data of HDU 1: BITPIX = 16, NAXIS1 = 60, "
        r"NAXIS2 = 48\) does not start with an XTENSION card: a truncated file, or a BITPIX"
    )
    one_line(lambda: exposure.read_exposure(path, fmt="lsst_calexp"), expected)
    one_line(lambda: exposure.read_exposure_header(path, fmt="lsst_calexp"), expected)


def test_bitpix_that_shrinks_the_data_within_its_last_block_is_one_line(tmp_path):
    """The next header is where it was (2400 and 1200 bytes both take one 2880-byte block): the
    image's other half is where the standard puts zeros. astropy read 16-bit numbers silently."""
    path = write_calexp(tmp_path / "e.fits")
    set_card(path, 1, "BITPIX", "16")
    expected = (
        r"e.fits: HDU 1 \(BITPIX = 16, NAXIS1 = 30, NAXIS2 = 20\): the 1680 bytes after its 1200 "
        r"bytes of data, which pad it to a 2880-byte block, are not zeros: a truncated file"
    )
    one_line(lambda: exposure.read_exposure(path, fmt="lsst_calexp"), expected)
    one_line(lambda: exposure.read_exposure_header(path, fmt="lsst_calexp"), expected)


def test_bitpix_of_the_last_hdu_that_does_not_match_the_data_is_one_line(tmp_path):
    """A one-HDU file (format fits, no EXTEND card): the bytes left after the shrunk data are not an HDU."""
    path = str(tmp_path / "img.fits")
    fits.PrimaryHDU(np.ones((60, 100), np.float32), header=tan_wcs((60, 100)).to_header()).writeto(path)
    set_card(path, 0, "BITPIX", "16")
    one_line(
        lambda: exposure.read_exposure(path, fmt="fits", fits_options={**FITS_FORMAT, "gain": 1.0}),
        r"img.fits: the header of HDU 1, after the data of HDU 0 \(BITPIX = 16, NAXIS1 = 100, "
        r"NAXIS2 = 60\), cannot be read \(Header missing END card.\): a truncated file",
    )


def test_bytes_after_the_last_hdu_that_are_not_an_hdu_are_one_line(tmp_path):
    """astropy skips them with a warning at most; here they are a sign of a corrupt file."""
    path = write_calexp(tmp_path / "e.fits")
    Path(path).write_bytes(Path(path).read_bytes() + b"garbage " * 100)
    one_line(
        lambda: exposure.read_exposure_header(path, fmt="lsst_calexp"),
        r"e.fits: the 800 bytes after the data of HDU 3 \(BITPIX = -32, NAXIS1 = 30, NAXIS2 = 20\) "
        r"are not a FITS HDU: a truncated file, or a BITPIX",
    )


def test_enlarged_naxis_is_one_line_before_any_data_is_read(tmp_path):
    """NAXIS1/2 = 100000 on a small file: 37 GiB of data past the end of the file, found from the
    header and the file size; nothing of that size is allocated."""
    path = write_calexp(tmp_path / "e.fits")
    set_card(path, 1, "NAXIS1", "100000", "NAXIS2", "100000")
    expected = (
        r"e.fits: HDU 1 \(BITPIX = -32, NAXIS1 = 100000, NAXIS2 = 100000\) needs 40000000000 "
        r"bytes of data but the file ends \d+ bytes after its header: a truncated file"
    )
    one_line(lambda: exposure.read_exposure_header(path, fmt="lsst_calexp"), expected)
    tracemalloc.start()
    try:
        one_line(lambda: exposure.read_exposure(path, fmt="lsst_calexp"), expected)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6


def test_a_truncated_file_names_the_hdu_whose_data_is_cut(tmp_path):
    path = write_calexp(tmp_path / "e.fits")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) - 2880])
    one_line(
        lambda: exposure.read_exposure(path, fmt="lsst_calexp"),
        r"e.fits: HDU 3 \(BITPIX = -32, NAXIS1 = 30, NAXIS2 = 20\) needs 2400 bytes of data but the "
        r"file ends 0 bytes after its header",
    )


def test_sound_files_are_not_taken_for_corrupt_ones(tmp_path):
    """Compressed files (whole or tiled), zero padding after the last HDU and a last block without its
    padding are read as before; astropy's warnings about them are still given."""
    path = write_calexp(tmp_path / "e.fits")
    with open(path, "rb") as src, gzip.open(tmp_path / "e.fits.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert exposure.read_exposure(str(tmp_path / "e.fits.gz"), fmt="lsst_calexp").shape == SHAPE
    tiled = tmp_path / "tiled.fits.fz"
    compressed = fits.CompImageHDU(np.ones(SHAPE, np.float32), header=tan_wcs().to_header())
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(tiled)
    with open_fits(tiled) as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
    (tmp_path / "padded.fits").write_bytes(Path(path).read_bytes() + bytes(2880))
    with pytest.warns(UserWarning, match="Unexpected extra padding"):
        exposure.read_exposure_header(str(tmp_path / "padded.fits"), fmt="lsst_calexp")
    unpadded = tmp_path / "unpadded.fits"
    data = Path(path).read_bytes()
    unpadded.write_bytes(data[: len(data) - (2880 - 20 * 30 * 4 % 2880)])
    with pytest.warns(UserWarning, match="File may have been truncated"):
        exp = exposure.read_exposure(str(unpadded), fmt="lsst_calexp")
    assert (exp.variance == 25).all()


@pytest.mark.parametrize(
    ("hdu", "keyword", "text", "message"),
    [
        (
            1,
            "PC1_1",
            "NAN",
            r"\(HDU 1\): header card PC1_1 cannot be parsed \(its value is not a FITS number",
        ),
        (1, "CRVAL1", "INF", r"\(HDU 1\): header card CRVAL1 cannot be parsed"),
        (1, "CRPIX2", "1E999", r"\(HDU 1\): header card CRPIX2 = inf is not a finite number"),
        (1, "PC2_2", "'7.3E-5'", r"e.fits: WCS card PC2_2 = '7.3E-5' is not a number"),
        (0, "MJD-OBS", "NAN", r"\(HDU 0\): header card MJD-OBS cannot be parsed"),
    ],
)
def test_unparsable_or_non_finite_cards_are_one_line_naming_the_card(tmp_path, hdu, keyword, text, message):
    """astropy raised VerifyError (NAN), refused to copy an infinite value, or wcslib took the default
    for a card it could not read (a string PC2_2: PC2_2 = 1, a silently wrong WCS)."""
    path = write_calexp(tmp_path / "e.fits")
    if keyword.startswith("PC"):
        with fits.open(path, mode="update") as hdul:  # the writer gives CD cards; a PC matrix here
            for h in hdul[1:]:
                h.header.update(tan_wcs().to_header())
                for key in ("CD1_1", "CD1_2", "CD2_1", "CD2_2"):
                    h.header.remove(key, ignore_missing=True)
                h.header["PC1_1"], h.header["PC2_2"], h.header["CDELT1"], h.header["CDELT2"] = (
                    -1.0,
                    1.0,
                    7.3e-5,
                    7.3e-5,
                )
        exposure.read_exposure_header(path, fmt="lsst_calexp")
    set_card(path, hdu, keyword, text)
    one_line(lambda: exposure.read_exposure_header(path, fmt="lsst_calexp"), message)
    one_line(lambda: exposure.read_exposure(path, fmt="lsst_calexp"), message)


@pytest.mark.parametrize("value", ["yesterday", True, ""])
def test_mjd_obs_that_is_not_a_number_is_one_line(value):
    header = fits.Header({"MJD-OBS": value, "DATE-OBS": "2023-01-01T00:00:00"})
    one_line(
        lambda: exposure.observation_epoch(header, source="e.fits"),
        rf"e.fits: MJD-OBS = {value!r} is not a number \(the observation's modified Julian date\)",
    )


def test_mjd_obs_written_as_a_number_or_a_numeric_string_gives_the_epoch():
    assert exposure.observation_epoch(fits.Header({"MJD-OBS": 60000.5})).mjd == 60000.5
    assert exposure.observation_epoch(fits.Header({"MJD-OBS": "60000.5"})).mjd == 60000.5
    assert exposure.observation_epoch(fits.Header({"MJD-OBS": 60000})).mjd == 60000


# --- item 9: mask bits and variances --------------------------------------------------------------------


def test_calexp_mask_bit_without_an_mp_card_is_one_line(tmp_path):
    """As formats fits and decam_cp stop on a value their table does not map."""
    mask = np.zeros(SHAPE, np.int32)
    mask[1, 1:4] = 1 << 12
    mask[2, 2] = (1 << 12) | 1
    mask[3, 3] = -(2**31)  # bit 31
    path = write_calexp(tmp_path / "e.fits", mask=mask)
    one_line(
        lambda: exposure.read_exposure(path, fmt="lsst_calexp"),
        r"e.fits \(HDU 2\): mask bits 12 \(value 4096, 4 pixels\), 31 \(value 2147483648, 1 pixels\) "
        r"have no MP_\* card naming a plane \(the cards name BAD 0, SAT 1, INTRP 2, CR 3, EDGE 4, "
        r"DETECTED 5, DETECTED_NEGATIVE 6, SUSPECT 7, NO_DATA 8, CROSSTALK 9, UNMASKEDNAN 10\)",
    )
    # the same in a separate mask file
    fits.PrimaryHDU(mask, header=fits.Header([("MP_BAD", 0), ("MP_SAT", 1)])).writeto(tmp_path / "m.fits")
    one_line(
        lambda: exposure.read_exposure(path, mask=str(tmp_path / "m.fits"), fmt="lsst_calexp"),
        r"m.fits: mask bits 12 .* have no MP_\* card naming a plane \(the cards name BAD 0, SAT 1\)",
    )
    mask[3, 3] = 0
    mask[mask != 0] = 1 << 12
    path = write_calexp(tmp_path / "e1.fits", mask=mask)
    one_line(
        lambda: exposure.read_exposure(path, fmt="lsst_calexp"),
        r"\(HDU 2\): mask bit 12 \(value 4096, 4 pixels\) has no MP_\* card",
    )


def test_calexp_mask_with_named_bits_only_is_read_as_it_is(tmp_path):
    mask = np.zeros(SHAPE, np.int32)
    mask[1, 1] = (1 << 12) | 1
    path = write_calexp(tmp_path / "e.fits", mask=mask, planes={**LSST_MASK_PLANES, "STREAK": 12})
    exp = exposure.read_exposure(path, fmt="lsst_calexp")
    assert exp.mask[1, 1] == (1 << 12) | 1 and exp.mask_planes["STREAK"] == 12


def bad_variance():
    var = np.full(SHAPE, 25.0, np.float32)
    var[1, 1], var[1, 2], var[2, 1], var[2, 2], var[3, 3] = 0.0, -4.0, np.nan, np.inf, -1.0
    return var


BAD = [(1, 1), (1, 2), (2, 1), (2, 2), (3, 3)]


def assert_no_data_where_bad(exp):
    no_data = (exp.mask & (1 << exp.mask_planes["NO_DATA"])) != 0
    expected = np.zeros(SHAPE, bool)
    expected[tuple(np.array(BAD).T)] = True
    assert (no_data == expected).all()
    assert (exp.variance[expected] == np.inf).all() and (exp.variance[~expected] == 25).all()


def test_calexp_variance_that_is_zero_negative_or_not_finite_is_no_data_with_a_notice(tmp_path, caplog):
    path = write_calexp(tmp_path / "e.fits", variance=bad_variance())
    with caplog.at_level(logging.WARNING, logger="brightstamps"):
        exp = exposure.read_exposure(path, fmt="lsst_calexp")
    assert_no_data_where_bad(exp)
    assert caplog.messages == [
        f"[bad_variance] {path} (HDU 3): 5 pixels with a variance that is not usable "
        "(1 0, 2 negative, 1 NaN, 1 infinite): flagged NO_DATA, variance +inf"
    ]
    # a calexp whose mask names no NO_DATA plane gets one on a free bit
    planes = {**{k: v for k, v in LSST_MASK_PLANES.items() if k != "NO_DATA"}, "STREAK": 8}
    exp = exposure.read_exposure(
        write_calexp(tmp_path / "e2.fits", variance=bad_variance(), planes=planes), fmt="lsst_calexp"
    )
    assert exp.mask_planes["NO_DATA"] == 11
    assert_no_data_where_bad(exp)


@pytest.mark.parametrize("fmt", ["lsst_calexp", "fits"])
def test_separate_variance_file_that_is_zero_negative_or_not_finite_is_no_data(tmp_path, caplog, fmt):
    """Zero was taken as a variance (weight +inf) and an LSST calexp took the file as it was."""
    path = write_calexp(tmp_path / "e.fits")
    fits.PrimaryHDU(bad_variance()).writeto(tmp_path / "v.fits")
    with caplog.at_level(logging.WARNING, logger="brightstamps"):
        exp = exposure.read_exposure(
            path,
            variance=str(tmp_path / "v.fits"),
            fmt=fmt,
            hdu=1 if fmt == "fits" else None,
            fits_options=FITS_FORMAT,
        )
    assert_no_data_where_bad(exp)
    assert len(caplog.messages) == 1 and "v.fits: 5 pixels with a variance that is not usable" in caplog.text


def test_weight_zero_is_no_data_silently_and_a_negative_or_nan_weight_with_a_notice(tmp_path, caplog):
    path = write_calexp(tmp_path / "e.fits")
    weight = np.full(SHAPE, 0.04, np.float32)
    weight[1, 1] = 0.0
    fits.PrimaryHDU(weight).writeto(tmp_path / "w.fits")
    with caplog.at_level(logging.WARNING, logger="brightstamps"):
        exp = exposure.read_exposure(path, weight=str(tmp_path / "w.fits"), fmt="lsst_calexp")
    assert exp.variance[1, 1] == np.inf and exp.mask[1, 1] == 1 << exp.mask_planes["NO_DATA"]
    assert exp.variance[0, 0] == np.float32(1 / np.float64(np.float32(0.04))) and not caplog.messages
    weight[2, 2], weight[3, 3], weight[4, 4] = -1.0, np.nan, 1e-39
    fits.PrimaryHDU(weight).writeto(tmp_path / "w2.fits")
    with caplog.at_level(logging.WARNING, logger="brightstamps"):
        exp = exposure.read_exposure(path, weight=str(tmp_path / "w2.fits"), fmt="lsst_calexp")
    assert caplog.messages == [
        f"[bad_variance] {tmp_path / 'w2.fits'}: 3 pixels with a weight that is not "
        "usable (1 negative, 1 NaN, 1 too small to invert): flagged NO_DATA, "
        "variance +inf"
    ]
    assert (exp.variance[[1, 2, 3, 4], [1, 2, 3, 4]] == np.inf).all()


def test_positive_variances_are_read_unchanged_without_a_notice(tmp_path, caplog):
    var = np.random.default_rng(1).uniform(1e-3, 1e3, SHAPE).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="brightstamps"):
        exp = exposure.read_exposure(write_calexp(tmp_path / "e.fits", variance=var), fmt="lsst_calexp")
    assert np.array_equal(exp.variance, var) and not exp.mask.any() and "bad_variance" not in caplog.text
