"""Rule plot_extended_psf: a band's extended PSF image, its radial profiles and the stars' fluxes."""

import _common

from brightstamps import plots, stack


def main(smk):
    band = smk.wildcards.band
    models, psf_stars, _, _ = stack.read_extended_psf(smk.input.psf)
    stamps_list = list(smk.input.stamps)  # paths, read one file at a time: memory of one exposure
    inner, outer = smk.params.annular_flux_radii
    plots.plot_extended_psf(models, smk.output.image, band=band)
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
    plots.plot_annular_flux(stack.band_stars(stamps_list, psf_stars), smk.output.annular_flux, band=band)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
