"""Rule normalization: divide each stamp by its annular flux; write the product file."""

import _common

from brightstamps import files, normalize, stampsfile


def main(smk):
    p = smk.params
    warped = stampsfile.read_stamps(smk.input[0], memmap=True)
    stamps = normalize.normalize_stamps(
        warped,
        annular_flux_radii=p.annular_flux_radii,
        annular_flux_statistic=p.annular_flux_statistic,
        num_sigma_clip=p.num_sigma_clip,
        num_iter=p.num_iter,
        bad_mask_planes=list(p.bad_mask_planes),
        min_valid_annulus_fraction=p.min_valid_annulus_fraction,
        discard_nan_flux_stars=p.discard_nan_flux_stars,
        normalize_variance=p.normalize_variance,
    )
    stamps.header.update(files.software_cards())
    stamps.header["CONFHASH"] = (p.config_hash, "sha256 (16 hex) of the per-exposure config")
    stampsfile.write_stamps(smk.output[0], stamps)


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
