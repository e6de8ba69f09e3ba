"""The on-disk stamps format, shared by the cut-out, warped and normalized stamp files.

Layout (one FITS file per exposure):

- HDU 0 (no data): header cards describing the collection. The final product carries
  ``EXPOSURE``, ``BAND``, ``DETECTOR``, ``NSTAMPS``, ``INNERRAD``, ``OUTERRAD``, ``NB90ROT``,
  ``KERNEL``, ``NORMSTAT``, ``NORMED``, ``CENTERX``, ``CENTERY`` (0-based central pixel),
  ``BSVERS`` and ``CONFHASH``; ``STAGE`` says which step wrote the file.
- HDU ``STARS``: binary table, one row per stamp (row i describes plane i of the cubes).
- HDUs ``IMAGE`` (float32), ``MASK`` (int32, ``MP_<PLANE>`` cards) and ``VARIANCE`` (float32):
  cubes of shape ``(NSTAMPS, H, W)``. With no stamp the cubes have ``NSTAMPS = 0`` planes and
  the stamp shape is kept in ``STAMPNX``/``STAMPNY``.
"""

import dataclasses

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .errors import InputError
from .files import atomic_output, open_fits
from .masks import mask_plane_cards, read_mask_planes

__all__ = ["Stamps", "write_stamps", "read_stamps"]


@dataclasses.dataclass
class Stamps:
    """A collection of same-sized stamps of one exposure.

    Attributes
    ----------
    image, mask, variance : numpy.ndarray
        ``(N, H, W)`` cubes: float32, int32 bit planes, float32.
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
        return Stamps(self.image[keep], self.mask[keep], self.variance[keep], self.stars[keep],
                      dict(self.mask_planes), dict(self.header))


def write_stamps(path, stamps):
    """Write *stamps* to *path* atomically in the layout of this module.

    Parameters
    ----------
    path : str
        Destination.
    stamps : Stamps
    """
    n = len(stamps)
    ny, nx = stamps.stamp_shape
    for name, cube in (("image", stamps.image), ("mask", stamps.mask), ("variance", stamps.variance)):
        if cube.shape != (n, ny, nx):
            raise ValueError(f"{name} cube has shape {cube.shape}, expected {(n, ny, nx)}")
    primary = fits.PrimaryHDU()
    for key, value in stamps.header.items():
        primary.header[key] = value
    primary.header["NSTAMPS"] = (n, "number of stamps (planes of the cubes)")
    primary.header["STAMPNX"] = (nx, "stamp width in pixels")
    primary.header["STAMPNY"] = (ny, "stamp height in pixels")
    table = fits.BinTableHDU(stamps.stars, name="STARS")
    image = fits.ImageHDU(np.ascontiguousarray(stamps.image, dtype=np.float32), name="IMAGE")
    mask = fits.ImageHDU(np.ascontiguousarray(stamps.mask, dtype=np.int32), name="MASK")
    for key, bit in mask_plane_cards(stamps.mask_planes):
        mask.header[key] = bit
    variance = fits.ImageHDU(np.ascontiguousarray(stamps.variance, dtype=np.float32), name="VARIANCE")
    with atomic_output(path) as tmp:
        fits.HDUList([primary, table, image, mask, variance]).writeto(tmp)


def read_stamps(path, *, cubes=True):
    """Read a stamps file.

    Parameters
    ----------
    path : str
        A file written by :func:`write_stamps`.
    cubes : bool
        Read the pixel cubes. False reads only the STARS table, mask planes and header (what
        a summary of many files needs) and gives cubes of zero stamps.

    Returns
    -------
    Stamps
        Cubes as numpy arrays (float32 / int32 / float32), the STARS table as an astropy
        Table, the mask planes and the HDU 0 cards as a dict.
    """
    with open_fits(path, what="stamps file") as hdul:
        try:
            header = {k: v for k, v in hdul[0].header.items() if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")}
            n, nx, ny = header.pop("NSTAMPS"), header.pop("STAMPNX"), header.pop("STAMPNY")
            stars = Table(hdul["STARS"].data)
            planes = read_mask_planes(hdul["MASK"].header, source=f"{path} (MASK)")
            read_cubes, cubes = cubes, []
            for name, dtype in (("IMAGE", np.float32), ("MASK", np.int32), ("VARIANCE", np.float32)):
                if not read_cubes:
                    cubes.append(np.zeros((0, ny, nx), dtype))
                    continue
                data = hdul[name].data if n else None
                cube = np.zeros((0, ny, nx), dtype) if data is None else np.asarray(data, dtype=dtype)
                if cube.shape != (n, ny, nx):
                    raise InputError(f"{path}: {name} has shape {cube.shape}, header says {(n, ny, nx)}")
                cubes.append(cube)
        except KeyError as err:
            raise InputError(f"{path}: not a brightstamps stamps file (missing {err})") from None
    for col in stars.colnames:  # FITS strings come back as bytes-like; keep plain str
        if stars[col].dtype.kind == "S":
            stars[col] = stars[col].astype(str)
    return Stamps(*cubes, stars, planes, header)
