"""The stamps file: exact round trip, and an empty collection is a valid file."""

import numpy as np
import pytest
from astropy.table import Table
from numpy.testing import assert_array_equal

from brightstamps.errors import InputError
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.stampsfile import Stamps, StampStream, open_stamps, read_stamps, write_stamps


def test_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(5)
    img = rng.normal(size=(3, 11, 9)).astype(np.float32)
    img[1, 2, 3] = np.nan
    msk = rng.integers(0, 512, size=(3, 11, 9)).astype(np.int32)
    var = rng.uniform(size=(3, 11, 9)).astype(np.float32)
    var[0, 0, 0] = np.inf
    stars = Table(
        {
            "gaia_id": np.array([2**62, 5, -1], np.int64),
            "g_mag": [1.0, 2.0, np.nan],
            "norm_status": ["ok", "nan_flux", "ok"],
        }
    )
    stamps = Stamps(
        img, msk, var, stars, dict(LSST_MASK_PLANES), {"EXPOSURE": "e1", "NORMED": True, "CENTERX": 4}
    )
    write_stamps(tmp_path / "s.fits", stamps)
    back = read_stamps(tmp_path / "s.fits")
    assert_array_equal(back.image, img)
    assert_array_equal(back.mask, msk)
    assert_array_equal(back.variance, var)
    assert list(back.stars["gaia_id"]) == [2**62, 5, -1]
    assert list(back.stars["norm_status"]) == ["ok", "nan_flux", "ok"]
    assert back.mask_planes == LSST_MASK_PLANES
    assert back.header["EXPOSURE"] == "e1" and back.header["NORMED"] is True and back.header["CENTERX"] == 4


def test_empty_collection_is_a_valid_file(tmp_path):
    stars = Table({"gaia_id": np.zeros(0, np.int64), "annular_flux": np.zeros(0)})
    empty = Stamps(
        np.zeros((0, 275, 275), np.float32),
        np.zeros((0, 275, 275), np.int32),
        np.zeros((0, 275, 275), np.float32),
        stars,
        dict(LSST_MASK_PLANES),
        {"NORMED": True},
    )
    write_stamps(tmp_path / "e.fits", empty)
    back = read_stamps(tmp_path / "e.fits")
    assert len(back) == 0 and back.image.shape == (0, 275, 275) and back.mask.dtype == np.int32
    assert back.stars.colnames == ["gaia_id", "annular_flux"]


def _collection(n, seed=7):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(n, 13, 10)).astype(np.float32)
    msk = rng.integers(0, 2**31 - 1, size=(n, 13, 10)).astype(np.int32)
    var = rng.uniform(size=(n, 13, 10)).astype(np.float32)
    stars = Table({"gaia_id": np.arange(n, dtype=np.int64), "g_mag": rng.uniform(9, 12, n)})
    return Stamps(img, msk, var, stars, dict(LSST_MASK_PLANES), {"EXPOSURE": "e1", "CENTERX": 5})


def _astropy_bytes(stamps, path):
    """The file as astropy's HDUList.writeto makes it from the whole cubes in memory."""
    from astropy.io import fits

    from brightstamps.masks import mask_plane_cards

    primary = fits.PrimaryHDU()
    for key, value in stamps.header.items():
        primary.header[key] = value
    primary.header["NSTAMPS"] = (len(stamps), "number of stamps (planes of the cubes)")
    primary.header["STAMPNX"] = (stamps.stamp_shape[1], "stamp width in pixels")
    primary.header["STAMPNY"] = (stamps.stamp_shape[0], "stamp height in pixels")
    mask = fits.ImageHDU(stamps.mask, name="MASK")
    for key, bit in mask_plane_cards(stamps.mask_planes):
        mask.header[key] = bit
    fits.HDUList(
        [
            primary,
            fits.BinTableHDU(stamps.stars, name="STARS"),
            fits.ImageHDU(stamps.image, name="IMAGE"),
            mask,
            fits.ImageHDU(stamps.variance, name="VARIANCE"),
        ]
    ).writeto(path)
    return path.read_bytes()


@pytest.mark.parametrize("n", [0, 1, 5, 7])
def test_streamed_file_is_byte_identical_to_astropy_writing_the_whole_cubes(tmp_path, n):
    stamps = _collection(n)
    # blocks of 3 stamps: a partial last block, and for n = 1 a single short one
    stream = StampStream(
        stamps.stars, stamps.mask_planes, stamps.header, stamps.stamp_shape, stamps.blocks(3)
    )
    write_stamps(tmp_path / "s.fits", stream)
    assert (tmp_path / "s.fits").read_bytes() == _astropy_bytes(stamps, tmp_path / "a.fits")


def test_memory_mapped_read_gives_the_same_stamps_block_by_block(tmp_path):
    stamps = _collection(7)
    write_stamps(tmp_path / "s.fits", stamps)
    mapped = read_stamps(tmp_path / "s.fits", memmap=True)
    assert isinstance(mapped.image, np.memmap) and mapped.stars.colnames == ["gaia_id", "g_mag"]
    blocks = list(mapped.blocks(3))
    assert [len(b[0]) for b in blocks] == [3, 3, 1]
    for i, (cube, dtype) in enumerate(
        ((stamps.image, np.float32), (stamps.mask, np.int32), (stamps.variance, np.float32))
    ):
        joined = np.concatenate([b[i] for b in blocks])
        assert joined.dtype == dtype and joined.dtype.isnative
        assert_array_equal(joined, cube)
    assert_array_equal(read_stamps(tmp_path / "s.fits").image, stamps.image)


def test_a_stream_that_does_not_match_its_table_leaves_no_file(tmp_path):
    stamps = _collection(5)
    short = StampStream(stamps.stars, stamps.mask_planes, stamps.header, stamps.stamp_shape, stamps.blocks(2))
    next(short.blocks)  # the first block is lost: 3 stamps for 5 rows
    with pytest.raises(ValueError, match="3 stamps written for the 5 rows"):
        write_stamps(tmp_path / "s.fits", short)
    wrong = StampStream(stamps.stars, stamps.mask_planes, stamps.header, (13, 11), stamps.blocks(2))
    with pytest.raises(ValueError, match="IMAGE block has shape"):
        write_stamps(tmp_path / "s.fits", wrong)
    assert list(tmp_path.iterdir()) == []


def test_cutout_and_warped_headers_need_no_hierarch_or_truncation_and_name_non_ascii_paths(tmp_path):
    """The cut-out file's STARS header holds the matched-star table's meta as 8-character cards
    (astropy wrote HIERARCH cards, with a warning each) and the warped file's comments fit (they
    were truncated, with a warning): warnings are errors here. Paths under a non-ASCII directory
    are written escaped and read back."""
    from astropy.io import fits

    from brightstamps import simulate
    from brightstamps.catalog import match_stars, read_catalog, read_stars, write_stars
    from brightstamps.configref import schema_defaults
    from brightstamps.exposure import Exposure
    from brightstamps.extract import extract_stamps
    from brightstamps.files import input_cards, path_from_card
    from brightstamps.skymodels import NoSky
    from brightstamps.warp import boresight_of, warp_stamps

    data = tmp_path / "données"
    data.mkdir()
    wcs = simulate.detector_wcs(detector=0, yaw_deg=90.0, size=200)
    ra, dec = wcs.all_pix2world([100.3], [99.6], 0)
    Table(
        {
            "source_id": [7],
            "ra": ra,
            "dec": dec,
            "phot_g_mean_mag": [9.0],
            "pmra": [1.0],
            "pmdec": [0.0],
            "ref_epoch": [2016.0],
        }
    ).write(data / "catalog.fits")
    columns = {
        "id": "source_id",
        "ra": "ra",
        "dec": "dec",
        "mag": "phot_g_mean_mag",
        "flux": "",
        "pmra": "pmra",
        "pmdec": "pmdec",
        "epoch": "ref_epoch",
    }
    defaults = schema_defaults()
    catalog = read_catalog(
        str(data / "catalog.fits"),
        columns=columns,
        mag_system="ab",
        vega_to_ab=defaults["catalog"]["vega_to_ab"],
    )
    image = str(data / "e1.fits")
    header = fits.Header({"MJD-OBS": 61000.0})
    matched = match_stars(
        catalog,
        wcs,
        header,
        shape=(200, 200),
        mag_limit=18.0,
        stamp_size=(41, 41),
        proper_motion=True,
        source=image,
    )
    write_stars(tmp_path / "stars.ecsv", matched)  # as the workflow: through the ECSV file
    stars = read_stars(tmp_path / "stars.ecsv")
    ones = np.ones((200, 200), np.float32)
    exp = Exposure(ones, np.zeros((200, 200), np.int32), ones, wcs, dict(LSST_MASK_PLANES), header, image)
    cutouts = extract_stamps(exp, stars, NoSky(exp.shape), stamp_size=(41, 41), do_remove_detected=False)
    cat = stars.meta["catalog"]
    digests = {image: "0" * 64, cat: stars.meta["catalog_sha256"]}
    cutouts.header.update(input_cards([image, cat], digests=digests))
    write_stamps(tmp_path / "raw.fits", cutouts)
    boresight = boresight_of(wcs, header, **defaults["boresight"])
    warped = warp_stamps(
        read_stamps(tmp_path / "raw.fits"),
        wcs,
        kernel="lanczos3",
        do_apply_transform=True,
        model_stamp_buffer=1.1,
        nb90_rots=1,
        orientation="quarter_turns",
        boresight=boresight,
    )
    write_stamps(tmp_path / "warped.fits", warped)
    with fits.open(tmp_path / "raw.fits") as raw, fits.open(tmp_path / "warped.fits") as warp:
        h = raw["STARS"].header
        assert path_from_card(h["EXPOSURE"]) == image
        assert path_from_card(h["CATALOG"]) == str(data / "catalog.fits")
        assert (h["CATSHA"], h["PMCORR"], h["MAGLIM"]) == (catalog.meta["sha256"], True, 18.0)
        infiles = [path_from_card(raw[0].header[k]) for k in ("INFILE1", "INFILE2")]
        assert infiles == [image, str(data / "catalog.fits")]
        for hdu in (raw[0], raw["STARS"], warp[0], warp["STARS"]):  # (MASK has afw's HIERARCH MP_ cards)
            assert all(len(card.keyword) <= 8 for card in hdu.header.cards)
        assert warp[0].header.comments["BOREDEC"] == "boresight Dec, distortion-free frame [deg]"


def test_open_stamps_reads_the_description_and_sections_of_chosen_planes(tmp_path):
    """The stack's reader: header, STARS and planes without pixels, then any planes over any section,
    as native arrays equal to the cubes."""
    stamps = _collection(7)
    write_stamps(tmp_path / "s.fits", stamps)
    info = open_stamps(tmp_path / "s.fits")
    whole = read_stamps(tmp_path / "s.fits", cubes=False)
    assert len(info) == 7 and info.stamp_shape == (13, 10) and info.path == str(tmp_path / "s.fits")
    assert info.header == whole.header and info.header["EXPOSURE"] == "e1" and "NSTAMPS" not in info.header
    assert info.mask_planes == LSST_MASK_PLANES and list(info.stars["gaia_id"]) == list(range(7))
    rows = [5, 1, 2, 3, 6]  # runs of consecutive planes, out of order
    ys, xs = slice(2, 9), slice(3, 10)
    for got, cube, dtype in zip(
        info.read(rows, ys, xs),
        (stamps.image, stamps.mask, stamps.variance),
        (np.float32, np.int32, np.float32),
        strict=True,
    ):
        assert got.dtype == dtype and got.dtype.isnative and got.shape == (5, 7, 7)
        assert_array_equal(got, cube[rows][:, ys, xs])
    assert_array_equal(info.read([4])[0], stamps.image[4:5])  # whole planes by default
    assert [c.shape for c in info.read([], ys, xs)] == [(0, 7, 7)] * 3
    with pytest.raises(IndexError, match="planes 6..7 asked of 7"):
        info.read([6, 7])


def _rewrite(stamps, path, *, image_dtype=np.float32, mask_dtype=np.int32, stars=None):
    """A stamps file written by astropy, with cubes of other types (scaled, or not float32) and any table."""
    from astropy.io import fits

    from brightstamps.masks import mask_plane_cards

    primary = fits.PrimaryHDU()
    for key, value in {
        **stamps.header,
        "NSTAMPS": len(stamps),
        "STAMPNX": stamps.stamp_shape[1],
        "STAMPNY": stamps.stamp_shape[0],
    }.items():
        primary.header[key] = value
    mask = fits.ImageHDU(stamps.mask.astype(mask_dtype), name="MASK")
    for key, bit in mask_plane_cards(stamps.mask_planes):
        mask.header[key] = bit
    fits.HDUList(
        [
            primary,
            fits.BinTableHDU(stamps.stars if stars is None else stars, name="STARS"),
            fits.ImageHDU(stamps.image.astype(image_dtype), name="IMAGE"),
            mask,
            fits.ImageHDU(stamps.variance, name="VARIANCE"),
        ]
    ).writeto(path)
    return path


def test_cubes_that_are_not_plain_pixels_read_the_same(tmp_path):
    """A float64 IMAGE, a MASK stored as unsigned (scaled: BZERO) and a gzip-compressed file cannot be
    memory-mapped as big-endian float32 / int32: both readers give the same stamps all the same."""
    import gzip

    stamps = _collection(5)
    stamps.mask[:] &= 0x7FFF  # fits in uint16
    odd = _rewrite(stamps, tmp_path / "odd.fits", image_dtype=np.float64, mask_dtype=np.uint16)
    write_stamps(tmp_path / "s.fits", stamps)
    (tmp_path / "s.fits.gz").write_bytes(gzip.compress((tmp_path / "s.fits").read_bytes()))
    for path in (odd, tmp_path / "s.fits.gz"):
        for memmap in (False, True):
            back = read_stamps(path, memmap=memmap)
            for got, cube in zip(
                (back.image, back.mask, back.variance),
                (stamps.image, stamps.mask, stamps.variance),
                strict=True,
            ):
                assert_array_equal(np.asarray(got), cube)
        for got, cube in zip(
            open_stamps(path).read([4, 0, 1], slice(1, 12), slice(None, 5)),
            (stamps.image, stamps.mask, stamps.variance),
            strict=True,
        ):
            assert got.dtype.isnative
            assert_array_equal(got, cube[[4, 0, 1], 1:12, :5])


def test_a_table_that_does_not_describe_the_cubes_is_named(tmp_path):
    """A STARS table of another length than NSTAMPS would put each star on another star's stamp."""
    stamps = _collection(4)
    path = _rewrite(stamps, tmp_path / "s.fits", stars=stamps.stars[:3])
    for read in (open_stamps, read_stamps, lambda p: read_stamps(p, cubes=False)):
        with pytest.raises(InputError, match=r"s.fits: STARS has 3 rows, header says NSTAMPS = 4$"):
            read(path)
