"""The on-disk stamps format, shared by the cut-out, warped and normalized stamp files.

Layout (one FITS file per exposure):

- HDU 0 (no data): header cards describing the collection. The final product carries
  ``EXPOSURE``, ``BAND``, ``DETECTOR``, ``NSTAMPS``, ``INNERRAD``, ``OUTERRAD``, ``NB90ROT``,
  ``KERNEL``, ``NORMSTAT``, ``NORMED``, ``CENTERX``, ``CENTERY`` (0-based central pixel),
  ``BSVERS`` and ``CONFHASH``; ``STAGE`` says which step wrote the file.
- HDU ``STARS``: binary table, one row per stamp (row i describes plane i of the cubes). In the
  cut-out file its header carries the matched-star table's provenance: ``EXPOSURE`` (the image
  file), ``CATALOG``, ``CATSHA`` (its SHA-256), ``CATVERS`` (an installed catalog's version),
  ``PMCORR`` (proper motions applied), ``MAGLIM`` (the magnitude limit) and ``MAGSYS`` (the
  system the catalog's magnitudes were read in).
- HDUs ``IMAGE`` (float32), ``MASK`` (int32, ``MP_<PLANE>`` cards) and ``VARIANCE`` (float32):
  cubes of shape ``(NSTAMPS, H, W)``. With no stamp the cubes have ``NSTAMPS = 0`` planes and
  the stamp shape is kept in ``STAMPNX``/``STAMPNY``.

Cards naming a file (``INFILEn``, ``EXPOSURE`` and ``CATALOG`` of ``STARS``) are written by
:func:`brightstamps.files.path_card_value`: read them with :func:`brightstamps.files.path_from_card`.

The steps stream their stamps: a :class:`StampStream` knows its table and header up front and
makes its pixels block by block, :func:`write_stamps` writes each block into its place in the
three cubes, and ``read_stamps(memmap=True)`` maps the cubes without reading them. Time and
memory per stamp then stay flat however many stars an exposure has.

This module is the one reader of the format: :func:`read_stamps` gives a :class:`Stamps`
collection, :func:`open_stamps` a :class:`StampsFile` (header, STARS and mask planes, no pixels)
whose :meth:`StampsFile.read` reads a section of chosen planes, as the stack does tile by tile.
"""

import dataclasses
import mmap
from collections.abc import Iterable

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .errors import InputError
from .files import atomic_output, open_fits, path_card_value
from .masks import mask_plane_cards, read_mask_planes

__all__ = ["BLOCK", "Stamps", "StampStream", "StampsFile", "write_stamps", "read_stamps", "open_stamps"]

#: The matched-star table's meta (:func:`brightstamps.catalog.match_stars`) -> STARS keyword and
#: comment: 8-character keywords (no HIERARCH card) and comments that fit on the card.
_STARS_META = {
    "exposure": ("EXPOSURE", None),
    "catalog": ("CATALOG", None),
    "catalog_sha256": ("CATSHA", None),
    "catalog_version": ("CATVERS", None),
    "proper_motion_applied": ("PMCORR", "proper motions applied (to the exposure epoch)"),
    "mag_limit": ("MAGLIM", "faint limit of the matched stars [mag]"),
    "mag_system": ("MAGSYS", "system of the catalog magnitudes (ab or vega)"),
}
_STARS_META_PATHS = ("exposure", "catalog")

#: Stamps per block when streaming: 32 stamps of 275 x 275 px are 29 MB in all three planes.
BLOCK = 32

# extension name, in-memory dtype; FITS stores them big-endian
_CUBES = (("IMAGE", np.dtype(np.float32)), ("MASK", np.dtype(np.int32)), ("VARIANCE", np.dtype(np.float32)))


@dataclasses.dataclass
class Stamps:
    """A collection of same-sized stamps of one exposure.

    Attributes
    ----------
    image, mask, variance : numpy.ndarray
        ``(N, H, W)`` cubes: float32, int32 bit planes, float32 (or read-only memory maps of a
        file's big-endian cubes, from ``read_stamps(memmap=True)``).
    stars : astropy.table.Table
        One row per stamp.
    mask_planes : dict of str to int
        Plane name to bit index.
    header : dict
        Collection metadata for HDU 0 (FITS keywords, 8 characters at most).
    """

    image: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    stars: Table
    mask_planes: dict
    header: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.stars)

    @property
    def stamp_shape(self):
        """``(H, W)`` of one stamp."""
        return self.image.shape[1:]

    def select(self, keep):
        """A new collection with only the stamps where boolean *keep* is true."""
        keep = np.asarray(keep, dtype=bool)
        return Stamps(
            self.image[keep],
            self.mask[keep],
            self.variance[keep],
            self.stars[keep],
            dict(self.mask_planes),
            dict(self.header),
        )

    def blocks(self, size=BLOCK):
        """Yield ``(image, mask, variance)`` for consecutive blocks of at most *size* stamps.

        The blocks are native float32 / int32 arrays, read block by block from a memory-mapped
        file; from cubes in memory they may be views, so copy before modifying.
        """
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            yield tuple(
                _planes(cube, start, stop, dtype)
                for cube, (_, dtype) in zip((self.image, self.mask, self.variance), _CUBES, strict=True)
            )

    def stream(self):
        """The collection as a :class:`StampStream`."""
        return StampStream(self.stars, self.mask_planes, self.header, tuple(self.stamp_shape), self.blocks())


@dataclasses.dataclass
class StampStream:
    """Stamps made block by block: table, mask planes, header and stamp shape are known up front.

    Attributes
    ----------
    stars : astropy.table.Table
        One row per stamp.
    mask_planes : dict of str to int
    header : dict
    stamp_shape : tuple of int
        ``(H, W)``.
    blocks : iterable
        Yields ``(image, mask, variance)`` blocks of ``(m, H, W)`` in the order of the rows of
        *stars*, once (a generator: the work happens as it is consumed).
    """

    stars: Table
    mask_planes: dict
    header: dict
    stamp_shape: tuple
    blocks: Iterable

    def __len__(self):
        return len(self.stars)

    def collect(self):
        """Make every block and return the whole collection in memory as :class:`Stamps`."""
        parts = list(self.blocks)
        cubes = [
            np.concatenate([p[i] for p in parts]) if parts else np.zeros((0, *self.stamp_shape), dtype)
            for i, (_, dtype) in enumerate(_CUBES)
        ]
        return Stamps(*cubes, self.stars, self.mask_planes, self.header)


def _planes(cube, start, stop, dtype):
    """Planes ``start:stop`` of *cube* as a native array of *dtype*.

    A cube mapped from a file is read with a plain read: pages touched through the map would
    stay in the process's memory, which would then grow with the number of stamps.
    """
    if isinstance(cube.base, mmap.mmap):  # a map made by read_stamps: offset is its own
        shape = (stop - start, *cube.shape[1:])
        plane_bytes = cube[0].nbytes
        data = np.fromfile(
            cube.filename,
            dtype=cube.dtype,
            count=int(np.prod(shape)),
            offset=cube.offset + start * plane_bytes,
        )
        return data.reshape(shape).astype(dtype)
    return np.asarray(cube[start:stop], dtype=dtype)


def _padded(nbytes):
    """Bytes that *nbytes* of data take in a FITS file: whole 2880-byte records."""
    return -(-nbytes // 2880) * 2880


def write_stamps(path, stamps):
    """Write *stamps* to *path* atomically in the layout of this module, block by block.

    The headers are written first and every block of pixels goes straight to its place in the
    three cubes, so memory does not grow with the number of stamps. The bytes are those of
    astropy's ``HDUList.writeto`` of the same cubes.

    Parameters
    ----------
    path : str
        Destination.
    stamps : Stamps or StampStream
    """
    stream = stamps.stream() if isinstance(stamps, Stamps) else stamps
    n = len(stream)
    ny, nx = stream.stamp_shape
    primary = fits.PrimaryHDU()
    for key, value in stream.header.items():
        primary.header[key] = value
    primary.header["NSTAMPS"] = (n, "number of stamps (planes of the cubes)")
    primary.header["STAMPNX"] = (nx, "stamp width in pixels")
    primary.header["STAMPNY"] = (ny, "stamp height in pixels")
    plane_bytes = ny * nx * 4
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        fits.HDUList([primary, _stars_hdu(stream.stars)]).writeto(f)
        offsets = []
        for name, dtype in _CUBES:
            # a broadcast zero has the cube's shape and dtype without its memory
            hdu = fits.ImageHDU(
                np.broadcast_to(np.zeros((), dtype.newbyteorder(">")), (n, ny, nx)), name=name
            )
            if name == "MASK":
                for key, bit in mask_plane_cards(stream.mask_planes):
                    hdu.header[key] = bit
            f.write(hdu.header.tostring().encode("ascii"))
            offsets.append(f.tell())
            f.seek(_padded(n * plane_bytes), 1)
        f.truncate(f.tell())  # the file's full size; the padding after each cube reads as zeros
        done = 0
        for block in stream.blocks:
            m = len(block[0])
            for (name, dtype), cube, offset in zip(_CUBES, block, offsets, strict=True):
                if cube.shape != (m, ny, nx):
                    raise ValueError(f"{name} block has shape {cube.shape}, expected {(m, ny, nx)}")
                if done + m > n:
                    raise ValueError(f"more stamps than the {n} rows of the STARS table")
                f.seek(offset + done * plane_bytes)
                f.write(np.ascontiguousarray(cube, dtype=dtype.newbyteorder(">")).data)
            done += m
        if done != n:
            raise ValueError(f"{done} stamps written for the {n} rows of the STARS table")


def _stars_hdu(stars):
    """The STARS HDU of *stars*, its meta written as cards of :data:`_STARS_META` (others as they are)."""
    meta = {}
    for key, value in stars.meta.items():
        keyword, comment = _STARS_META.get(key, (key, None))
        if key in _STARS_META_PATHS:
            value = path_card_value(value)
        meta[keyword] = value if comment is None else (value, comment)
    table = stars.copy(copy_data=False)
    table.meta = meta
    return fits.BinTableHDU(table, name="STARS")


@dataclasses.dataclass(frozen=True, eq=False)
class StampsFile:
    """A stamps file without its pixels: what describes it, and reads of sections of its planes.

    Made by :func:`open_stamps`; the file is not kept open, each :meth:`read` opens it again.

    Attributes
    ----------
    path : str
        The file.
    header : dict
        HDU 0 cards, as in :attr:`Stamps.header` (without ``NSTAMPS``, ``STAMPNX``, ``STAMPNY``).
    stars : astropy.table.Table
        One row per stamp (row i describes plane i of the cubes).
    mask_planes : dict of str to int
        Plane name to bit index.
    stamp_shape : tuple of int
        ``(H, W)`` of one stamp.
    """

    path: str
    header: dict
    stars: Table
    mask_planes: dict
    stamp_shape: tuple
    # data offset of each cube of _CUBES in the file, None where its bytes are not plain pixels
    _offsets: tuple = dataclasses.field(repr=False)

    def __len__(self):
        return len(self.stars)

    def read(self, rows, ys=slice(None), xs=slice(None)):
        """Image, mask and variance of the planes *rows* over the section ``[ys, xs]``.

        Consecutive planes are read as one block, through a memory map of the file made for this
        read only: the pages it touched leave the process with it, so reading a file tile by tile
        does not grow the memory. Cubes that are not plain pixels (scaled, of another type, or a
        compressed file) are read through astropy's section instead.

        Parameters
        ----------
        rows : array_like of int
            Planes (rows of :attr:`stars`), in the order wanted.
        ys, xs : slice
            The section of each plane.

        Returns
        -------
        tuple of numpy.ndarray
            ``(image, mask, variance)``: native float32 / int32 / float32 arrays of shape
            ``(len(rows), ny, nx)``.
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = len(self)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"{self.path}: planes {rows.min()}..{rows.max()} asked of {n}")
        section = np.broadcast_to(np.zeros((), bool), self.stamp_shape)[ys, xs].shape
        if not len(rows):
            return tuple(np.zeros((0, *section), dtype) for _, dtype in _CUBES)
        runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)
        hdul = None if None not in self._offsets else open_fits(self.path, what="stamps file")
        try:
            out = []
            for (name, dtype), offset in zip(_CUBES, self._offsets, strict=True):
                cube = (
                    hdul[name].section
                    if offset is None
                    else _map_cube(self.path, offset, dtype, (n, *self.stamp_shape))
                )
                out.append(
                    np.concatenate(
                        [np.array(cube[int(run[0]) : int(run[-1]) + 1, ys, xs], dtype=dtype) for run in runs]
                    )
                )
        finally:
            if hdul is not None:
                hdul.close()
        return tuple(out)


def open_stamps(path):
    """Read a stamps file's header, STARS table and mask planes, not its pixels.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`write_stamps`.

    Returns
    -------
    StampsFile
        Its :meth:`~StampsFile.read` reads sections of the planes.
    """
    with open_fits(path, what="stamps file") as hdul:
        return _describe(path, hdul)


def _describe(path, hdul):
    """The :class:`StampsFile` of an open stamps file: header, STARS, mask planes and cube layout."""
    try:
        header = {k: v for k, v in hdul[0].header.items() if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")}
        n, nx, ny = header.pop("NSTAMPS"), header.pop("STAMPNX"), header.pop("STAMPNY")
        stars = Table(hdul["STARS"].data)
        planes = read_mask_planes(hdul["MASK"].header, source=f"{path} (MASK)")
        offsets = []
        for name, dtype in _CUBES:
            hdu = hdul[name]
            if n and hdu.shape != (n, ny, nx):
                raise InputError(f"{path}: {name} has shape {hdu.shape}, header says {(n, ny, nx)}")
            offsets.append(_plain_offset(hdu, dtype))
    except KeyError as err:
        raise InputError(f"{path}: not a brightstamps stamps file (missing {err})") from None
    if len(stars) != n:
        raise InputError(f"{path}: STARS has {len(stars)} rows, header says NSTAMPS = {n}")
    for col in stars.colnames:  # FITS strings come back as bytes-like; keep plain str
        if stars[col].dtype.kind == "S":
            stars[col] = stars[col].astype(str)
    return StampsFile(str(path), header, stars, planes, (int(ny), int(nx)), tuple(offsets))


def read_stamps(path, *, cubes=True, memmap=False):
    """Read a stamps file.

    Parameters
    ----------
    path : str
        A file written by :func:`write_stamps`.
    cubes : bool
        Read the pixel cubes. False reads only the STARS table, mask planes and header (what
        a summary of many files needs) and gives cubes of zero stamps.
    memmap : bool
        Map the cubes read-only instead of reading them: pixels are read when used (e.g. by
        :meth:`Stamps.blocks`), so memory does not grow with the number of stamps.

    Returns
    -------
    Stamps
        Cubes as numpy arrays (float32 / int32 / float32, or big-endian memory maps), the STARS
        table as an astropy Table, the mask planes and the HDU 0 cards as a dict.
    """
    with open_fits(path, what="stamps file") as hdul:
        info = _describe(path, hdul)
        n, shape = len(info), info.stamp_shape
        out = []
        for (name, dtype), offset in zip(_CUBES, info._offsets, strict=True):
            if not cubes or not n:
                out.append(np.zeros((0, *shape), dtype))
            elif memmap and offset is not None:
                out.append(_map_cube(path, offset, dtype, (n, *shape)))
            else:
                out.append(np.asarray(hdul[name].data, dtype=dtype))
    return Stamps(*out, info.stars, info.mask_planes, info.header)


def _plain_offset(hdu, dtype):
    """Where an image HDU's cube starts in its file, or None where a memory map cannot read it.

    A memory map reads plain pixels of *dtype* only: big-endian, unscaled, in an uncompressed file.
    """
    h = hdu.header
    bitpix = -32 if dtype.kind == "f" else 32
    if h.get("BITPIX") != bitpix or h.get("NAXIS") != 3 or "BZERO" in h or "BSCALE" in h:
        return None
    info = hdu.fileinfo()
    if info is None or getattr(info["file"], "compression", None) is not None:
        return None
    return info["datLoc"]


def _map_cube(path, offset, dtype, shape):
    """A read-only memory map of the big-endian cube of *dtype* and *shape* at *offset* in *path*."""
    return np.memmap(path, dtype=dtype.newbyteorder(">"), mode="r", offset=offset, shape=shape)
