"""Every keyword of :func:`brightstamps.stack.stack_stamps`, for the unit tests that call it.

LSST's legacy stack (annulus normalization, unweighted MEANCLIP of 4 sigma, 3 iterations, no
magnitude cut) with psf_fit's own settings as in the config schema; each test names what it
changes.
"""

from brightstamps.masks import LSST_BAD_MASK_PLANES


def stack_options(*, psf_fit=None, **changes):
    """The keywords of ``stack_stamps``, with *changes* and the ``psf_fit`` entries in *psf_fit*."""
    options = {
        "regions": {},
        "normalization": "annulus",
        "weighting": "none",
        "statistic": "MEANCLIP",
        "num_sigma_clip": 4.0,
        "num_iter": 3,
        "bad_mask_planes": list(LSST_BAD_MASK_PLANES),
        "min_valid_annulus_fraction": 0.0,
        "mag_limit": None,
        "include_failed": False,
        "psf_fit": {
            "background_order": 1,
            "iterations": 20,
            "tolerance": 1e-3,
            "max_masked_flux_fraction": 0.97,
            "min_model_snr": 5,
            "subtract_background": True,
        },
        "flux_radius": 10,
        "memory_mb": 200,
    }
    options["psf_fit"].update(psf_fit or {})
    return options | changes
