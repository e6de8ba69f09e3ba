"""Rule stack_extended_psf: stack a band's stamps into one extended PSF per focal-plane region."""

import _common

from brightstamps import files, stack


def main(smk):
    p = smk.params
    options = dict(p.stack)
    models, stars = stack.stack_stamps(
        list(smk.input.stamps),
        regions={k: list(v) for k, v in p.regions.items()},
        normalization=p.normalization,
        weighting=options["weighting"],
        statistic=options["statistic"],
        num_sigma_clip=options["num_sigma_clip"],
        num_iter=options["num_iter"],
        bad_mask_planes=list(options["bad_mask_planes"]),
        min_valid_annulus_fraction=options["min_valid_annulus_fraction"],
        mag_limit=options["mag_limit"] if options["do_mag_cut"] else None,
        include_failed=options["include_failed_stars"],
        psf_fit=dict(p.psf_fit),
        flux_radius=options["flux_radius"],
        memory_mb=options["memory_mb"],
        band=smk.wildcards.band,
        require_stars=options["require_stars"],
    )
    inputs = stack.describe_inputs(list(smk.input.stamps))
    header = {
        "NORMMODE": p.normalization,
        "WEIGHTNG": options["weighting"],
        "STACKSTA": options["statistic"],
        "FLUXRAD": (float(options["flux_radius"]), "[px] radius of the flux normalization"),
        **files.software_cards(),
    }
    stack.write_extended_psf(
        smk.output[0], models, stars, band=smk.wildcards.band, inputs=inputs, header=header
    )


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
