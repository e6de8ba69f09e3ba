"""Stamps of a simulated field whose PSF and fluxes are known: a few saturated stars, many faint ones.

Every stamp is the simulator's true PSF (:func:`brightstamps.simulate.true_psf_stamp`) times the
star's flux, plus an optional pedestal and gradient, plus Gaussian noise of the variance plane
(sky and read noise plus the star's photon noise), with the pixels above the saturation level set
to it and flagged SAT, as after steps 1-5 (stored with ``annular_flux`` 1, i.e. in exposure
units). Magnitudes follow a real field's number counts, dN/dG ~ 10**(0.3 G).
"""

import numpy as np
from astropy.table import Table

from brightstamps import simulate as sim
from brightstamps.masks import LSST_MASK_PLANES
from brightstamps.stampsfile import Stamps, write_stamps

SAT = 1 << LSST_MASK_PLANES["SAT"]
NOISE_VARIANCE = 425.0  # the simulator's sky + read noise variance (ADU^2)


def field_magnitudes(rng, n_sat, n_faint, *, bright=(6.3, 8.5), faint=(12.2, 17.5)):
    """*n_sat* saturated stars (uniform in *bright*) and *n_faint* drawn as dN/dG ~ 10**(0.3 G)."""
    lo, hi = 10 ** (0.3 * faint[0]), 10 ** (0.3 * faint[1])
    u = rng.uniform(size=n_faint)
    return np.concatenate([rng.uniform(*bright, n_sat), np.log10(lo + u * (hi - lo)) / 0.3])


def write_field(
    path,
    *,
    seed,
    shape=(151, 151),
    n_sat=8,
    n_faint=50,
    detector=0,
    pedestal=0.0,
    gradient=0.0,
    extra=None,
    host_mag=None,
    annulus=(40, 50),
    catalogue_scatter=0.1,
):
    """Write one exposure's stamps; return the true fluxes (ADU) and the true PSF (unit flux).

    Parameters
    ----------
    path : str or pathlib.Path
    seed : int
    shape : tuple of int
        Odd stamp shape; the star is on the central pixel.
    n_sat, n_faint : int
        Saturated and faint stars.
    detector : int
    pedestal, gradient : float
        Standard deviations (ADU) of each stamp's random pedestal and of its gradient across half
        the stamp: a background that does not scale with the star.
    extra : callable, optional
        ``extra(k, flux) -> image`` added to star *k*'s noiseless stamp (a galaxy beside a star).
    host_mag : float, optional
        The first star's magnitude instead of a drawn one (e.g. the field's brightest).
    annulus : tuple of int
        INNERRAD, OUTERRAD of the header.
    catalogue_scatter : float
        Magnitudes in the STARS table differ from the truth by this much (rms): a catalogue in
        another band.
    """
    rng = np.random.default_rng(seed)
    g = field_magnitudes(rng, n_sat, n_faint)
    if host_mag is not None:
        g[0] = host_mag
    flux = sim.mag_to_flux(g)
    truth = sim.true_psf_stamp(shape)
    ny, nx = shape
    yy, xx = np.indices(shape)
    x, y = (xx - nx // 2) / (nx / 2), (yy - ny // 2) / (ny / 2)
    images, masks, variances = [], [], []
    for k, f in enumerate(flux):
        model = f * truth
        if extra is not None:
            model = model + extra(k, f)
        background = pedestal * rng.normal() + gradient * (rng.normal() * x + rng.normal() * y)
        variance = NOISE_VARIANCE + np.maximum(model, 0.0)
        image = model + background + rng.normal(size=shape) * np.sqrt(variance)
        saturated = model + background >= sim.SATURATION
        image[saturated] = sim.SATURATION
        masks.append(np.where(saturated, SAT, 0).astype(np.int32))
        images.append(image)
        variances.append(variance)
    n = len(g)
    stars = Table(
        {
            "gaia_id": np.arange(n, dtype=np.int64) + 1000 * detector,
            "g_mag": g + rng.normal(scale=catalogue_scatter, size=n),
            "annular_flux": np.ones(n),
            "valid_annulus_fraction": np.ones(n),
            "norm_status": np.full(n, "ok"),
        }
    )
    header = {
        "EXPOSURE": f"e{detector}",
        "DETECTOR": detector,
        "NORMED": True,
        "CENTERX": nx // 2,
        "CENTERY": ny // 2,
        "INNERRAD": annulus[0],
        "OUTERRAD": annulus[1],
        "VARNORM": True,
    }
    stamps = Stamps(
        np.asarray(images, np.float32),
        np.asarray(masks),
        np.asarray(variances, np.float32),
        stars,
        dict(LSST_MASK_PLANES),
        header,
    )
    write_stamps(str(path), stamps)
    return flux, truth
