"""Celestial frames: the catalog and the boresight are ICRS, an exposure's WCS may be in another frame.

A WCS's world coordinates are in the frame its header declares: ``RA``/``DEC`` axes in ICRS, FK5
or FK4 (``RADESYS``, ``EQUINOX``, by the FITS standard's defaults), ``GLON``/``GLAT`` axes in
galactic coordinates. Catalog positions are converted into that frame (through astropy) before
they are compared with the WCS, and positions from the WCS into ICRS before they are compared
with the catalog. An ICRS WCS takes no conversion at all, so its numbers stay exactly as they are.
"""

import numpy as np

from .errors import InputError

__all__ = ["frame_name", "from_icrs", "to_icrs", "wcs_frame"]


def wcs_frame(wcs, *, source=""):
    """The celestial frame of *wcs*: None for ICRS, else the astropy frame to convert through.

    ``RA``/``DEC`` axes follow ``RADESYS`` and ``EQUINOX`` as astropy reads them (no ``RADESYS``:
    ICRS without ``EQUINOX``, FK4 before 1984, FK5 after); an FK4 frame is observed at the
    WCS's ``MJD-OBS`` (or ``DATE-OBS``) when it has one, as the standard asks. ``GLON``/``GLAT``
    axes are galactic and ``SLON``/``SLAT`` supergalactic, whatever ``RADESYS`` says (it does not
    apply to them).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A celestial WCS.
    source : str
        File named in errors.

    Returns
    -------
    astropy.coordinates.BaseCoordinateFrame or None
        None when the WCS is ICRS.

    Raises
    ------
    brightstamps.errors.InputError
        Longitude and latitude not on the first and second axes, or a frame that astropy cannot
        convert to ICRS (e.g. ecliptic, or ``RADESYS = 'GAPPT'``).
    """
    from astropy.coordinates import FK4, ICRS, FK4NoETerms, Galactic, Supergalactic
    from astropy.time import Time
    from astropy.wcs.utils import wcs_to_celestial_frame

    ctype = [str(c) for c in wcs.wcs.ctype]
    if (wcs.wcs.lng, wcs.wcs.lat) != (0, 1):  # callers pass (lon, lat) pairs in axis order
        raise InputError(
            f"{source}: the WCS has CTYPE {ctype[0]!r}, {ctype[1]!r}; longitude must be on "
            "axis 1 and latitude on axis 2"
        )
    lon, lat = ctype[0][:4], ctype[1][:4]
    frame = None
    if (lon, lat) == ("GLON", "GLAT"):
        frame = Galactic()
    elif (lon, lat) == ("SLON", "SLAT"):
        frame = Supergalactic()
    elif (lon, lat) == ("RA--", "DEC-"):
        try:
            frame = wcs_to_celestial_frame(wcs)
        except ValueError:  # a RADESYS astropy does not know (e.g. GAPPT): no frame
            frame = None
        if isinstance(frame, FK4 | FK4NoETerms) and np.isfinite(wcs.wcs.mjdobs):
            # FK4 is not inertial: its positions hold for the epoch of observation (MJD-OBS,
            # or DATE-OBS, which astropy's WCS turns into MJD-OBS)
            frame = type(frame)(equinox=frame.equinox, obstime=Time(wcs.wcs.mjdobs, format="mjd"))
    if frame is None or not frame.is_transformable_to(ICRS):
        radesys = f", RADESYS {wcs.wcs.radesys!r}" if lon == "RA--" else ""
        raise InputError(
            f"{source}: the WCS's celestial frame (CTYPE {ctype[0]!r}, {ctype[1]!r}{radesys}) "
            "cannot be converted to the catalog's ICRS; give the WCS in RA/Dec (ICRS, FK5 or "
            "FK4) or galactic coordinates"
        )
    return None if isinstance(frame, ICRS) else frame


def frame_name(frame):
    """Short name of a frame from :func:`wcs_frame`, for a header card (``ICRS`` for None).

    Examples
    --------
    >>> from astropy.coordinates import FK5, Galactic
    >>> frame_name(None), frame_name(Galactic()), frame_name(FK5(equinox="J2000"))
    ('ICRS', 'galactic', 'FK5 J2000.000')
    """
    if frame is None:
        return "ICRS"
    if frame.name == "fk5":
        return f"FK5 {frame.equinox.jyear_str}"
    if frame.name in ("fk4", "fk4noeterms"):
        name = "FK4" if frame.name == "fk4" else "FK4-NO-E"
        at_equinox = np.isclose(frame.obstime.jyear, frame.equinox.jyear)  # (== on Times warns before 1960)
        observed = "" if at_equinox else f" at MJD {frame.obstime.mjd:.5f}"
        return f"{name} {frame.equinox.byear_str}{observed}"
    return frame.name


def _convert(lon, lat, frm, to):
    from astropy.coordinates import SkyCoord, UnitSphericalRepresentation

    lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
    if lon.size == 0:
        return lon.copy(), lat.copy()
    sph = SkyCoord(lon, lat, unit="deg", frame=frm).transform_to(to).represent_as(UnitSphericalRepresentation)
    return np.asarray(sph.lon.deg, dtype=np.float64), np.asarray(sph.lat.deg, dtype=np.float64)


def from_icrs(ra, dec, frame):
    """ICRS positions (deg) in *frame* (from :func:`wcs_frame`; None: returned as they are).

    Parameters
    ----------
    ra, dec : array_like
        ICRS coordinates in degrees.
    frame : astropy.coordinates.BaseCoordinateFrame or None

    Returns
    -------
    tuple of numpy.ndarray
        Longitude and latitude in *frame*, degrees.
    """
    if frame is None:
        return ra, dec
    from astropy.coordinates import ICRS

    return _convert(ra, dec, ICRS(), frame)


def to_icrs(lon, lat, frame):
    """Positions (deg) in *frame* (from :func:`wcs_frame`; None: returned as they are) in ICRS.

    Parameters
    ----------
    lon, lat : array_like
        Coordinates in *frame*, degrees.
    frame : astropy.coordinates.BaseCoordinateFrame or None

    Returns
    -------
    tuple of numpy.ndarray
        ICRS right ascension and declination, degrees.
    """
    if frame is None:
        return lon, lat
    from astropy.coordinates import ICRS

    return _convert(lon, lat, frame, ICRS())
