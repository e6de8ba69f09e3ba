"""Rule plot_extended_psf: a band's extended PSF, its profile, the stars' profiles, fluxes and fits.

The profile is drawn over the simulated demo's true PSF when the rule is given it (input truth).
"""

import _common

from brightstamps import plots, simulate, stack


def main(smk):
    band = smk.wildcards.band
    models, psf_stars, _, header = stack.read_extended_psf(smk.input.psf)
    stamps_list = list(smk.input.stamps)  # paths, read one file at a time: memory of one exposure
    inner, outer = smk.params.annular_flux_radii
    truth = simulate.read_true_psf(smk.input.truth) if smk.input.get("truth") else None
    plots.plot_extended_psf(models, smk.output.image, band=band, header=header)
    plots.plot_psf_profile(
        models, smk.output.psf_profile, band=band, header=header, truth=truth, annulus_radii=(inner, outer)
    )
    plots.plot_profiles(
        models,
        stamps_list,
        smk.output.profile,
        band=band,
        inner_radius=inner,
        outer_radius=outer,
        bad_mask_planes=list(smk.params.bad_mask_planes),
        psf_stars=psf_stars,
    )
    plots.plot_star_fits(psf_stars, smk.output.star_fits, band=band, header=header)
    plots.plot_annular_flux(stack.band_stars(stamps_list, psf_stars), smk.output.annular_flux, band=band)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
