"""The same sky in another celestial frame: a copy of a WCS re-expressed in FK5, FK4 or galactic
coordinates, for the tests that a WCS's frame does not change which stars are found where."""

import numpy as np
from astropy.coordinates import FK4, FK5, Galactic, SkyCoord, UnitSphericalRepresentation
from astropy.time import Time
from astropy.wcs import WCS

#: Frame name -> (CTYPE prefixes, RADESYS, EQUINOX).
FRAMES = {
    "galactic": (("GLON", "GLAT"), "", np.nan),
    "fk5": (("RA--", "DEC-"), "FK5", 2000.0),
    "fk4": (("RA--", "DEC-"), "FK4", 1950.0),
}


def astropy_frame(name, mjdobs=None):
    """The astropy frame a WCS re-expressed in *name* is in (FK4: observed at *mjdobs*)."""
    if name == "galactic":
        return Galactic()
    if name == "fk5":
        return FK5(equinox="J2000")
    return FK4(equinox="B1950", obstime=None if mjdobs is None else Time(mjdobs, format="mjd"))


def _lonlat(coord):
    sph = coord.represent_as(UnitSphericalRepresentation)
    return np.column_stack([sph.lon.deg, sph.lat.deg])


def _tangent_plane(crval):
    """Gnomonic projection about *crval* (LONPOLE 180, as a TAN WCS's): world -> (x, y) in degrees."""
    proj = WCS(naxis=2)
    proj.wcs.ctype = ["RA---TAN", "DEC--TAN"]  # the frame does not matter to the projection's arithmetic
    proj.wcs.crval = crval
    proj.wcs.crpix = [0.0, 0.0]
    proj.wcs.cdelt = [1.0, 1.0]
    return proj


def reexpress(wcs, name, *, shape, mjdobs=None):
    """A copy of the ICRS *wcs* in frame *name* that describes the same sky over *shape* (ny, nx).

    CRPIX and the SIP terms stay; CRVAL is converted, and the linear part (CD) is turned (and, for
    FK4's E-terms, very slightly sheared) by the linear map between the two frames' tangent planes
    at the reference point, fitted over the detector. For galactic and FK5 that map is a rotation
    and the copy is exact to rounding. Returns the WCS and its header cards.
    """
    (lon, lat), radesys, equinox = FRAMES[name]
    frame = astropy_frame(name, mjdobs)
    crval = _lonlat(SkyCoord(*wcs.wcs.crval, unit="deg", frame="icrs").transform_to(frame))[0]
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(-0.2 * nx, 1.2 * nx, 9), np.linspace(-0.2 * ny, 1.2 * ny, 9))
    world = wcs.all_pix2world(np.column_stack([gx.ravel(), gy.ravel()]), 0)
    there = _lonlat(SkyCoord(world[:, 0], world[:, 1], unit="deg", frame="icrs").transform_to(frame))
    # the points' intermediate world coordinates (CD times SIP-corrected pixels) in each frame
    here_img = _tangent_plane(wcs.wcs.crval).wcs_world2pix(world, 1)
    there_img = _tangent_plane(crval).wcs_world2pix(there, 1)
    b, *_ = np.linalg.lstsq(here_img, there_img, rcond=None)  # there = here @ b, i.e. M = b.T
    cd = b.T @ wcs.pixel_scale_matrix
    header = wcs.to_header(relax=True)
    for key in (
        "LATPOLE",
        "RADESYS",
        "EQUINOX",
        "PC1_1",
        "PC1_2",
        "PC2_1",
        "PC2_2",
        "CD1_1",
        "CD1_2",
        "CD2_1",
        "CD2_2",
    ):
        header.remove(key, ignore_missing=True)
    header["CTYPE1"] = lon + header["CTYPE1"][4:]
    header["CTYPE2"] = lat + header["CTYPE2"][4:]
    header["CRVAL1"], header["CRVAL2"] = (float(v) for v in crval)
    header["CDELT1"] = header["CDELT2"] = 1.0
    for (i, j), value in np.ndenumerate(cd):
        header[f"PC{i + 1}_{j + 1}"] = float(value)
    if radesys:
        header["RADESYS"], header["EQUINOX"] = radesys, equinox
    if mjdobs is not None:
        header["MJD-OBS"] = mjdobs
    return WCS(header), header


def sky_offset_mas(wcs, other, name, *, shape, mjdobs=None):
    """Largest distance (mas) between where *wcs* (ICRS) and *other* (in *name*) put the same pixels."""
    ny, nx = shape
    gx, gy = np.meshgrid(np.linspace(-0.2 * nx, 1.2 * nx, 13), np.linspace(-0.2 * ny, 1.2 * ny, 13))
    pix = np.column_stack([gx.ravel(), gy.ravel()])
    a = SkyCoord(*wcs.all_pix2world(pix, 0).T, unit="deg", frame="icrs")
    b = SkyCoord(*other.all_pix2world(pix, 0).T, unit="deg", frame=astropy_frame(name, mjdobs)).transform_to(
        "icrs"
    )
    return float(a.separation(b).to_value("mas").max())
