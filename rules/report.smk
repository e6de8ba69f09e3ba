# The report's figures and tables (`snakemake --report report.html`). Plots are made here, by
# rules of their own, so the science rules stay free of matplotlib.


rule plot_stamps:
    input:
        "results/{exposure}/bright_star_stamps.fits",
    output:
        report(
            "results/plots/{exposure}_stamps.png",
            caption="../report/stamps.rst",
            category="Stamps",
            subcategory=exposure_band,
            labels={"exposure": "{exposure}", "figure": "stamp mosaic"},
        ),
    log:
        "logs/plot_stamps/{exposure}.log",
    benchmark:
        "benchmarks/plot_stamps/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bad_mask_planes=config["bad_mask_planes"],
    script:
        "../scripts/plot_stamps.py"


# The simulated demo's true PSF (input truth, only when the band's exposures are the demo's) is
# drawn over the model's profile.
rule plot_extended_psf:
    input:
        unpack(demo_truth),
        psf="results/extended_psf/{band}.fits",
        stamps=band_stamps,
    output:
        image=report(
            "results/plots/{band}_extended_psf.png",
            caption="../report/extended_psf.rst",
            category="Extended PSF",
            subcategory="band {band}",
            labels={"band": "{band}", "figure": "extended PSF image"},
        ),
        psf_profile=report(
            "results/plots/{band}_psf_profile.png",
            caption="../report/psf_profile.rst",
            category="Extended PSF",
            subcategory="band {band}",
            labels={"band": "{band}", "figure": "profile and dynamic range"},
        ),
        profile=report(
            "results/plots/{band}_profile.png",
            caption="../report/profile.rst",
            category="Extended PSF",
            subcategory="band {band}",
            labels={"band": "{band}", "figure": "radial profiles"},
        ),
        annular_flux=report(
            "results/plots/{band}_annular_flux.png",
            caption="../report/annular_flux.rst",
            category="Extended PSF",
            subcategory="band {band}",
            labels={"band": "{band}", "figure": "annular flux vs G"},
        ),
        star_fits=report(
            "results/plots/{band}_star_fits.png",
            caption="../report/star_fits.rst",
            category="Extended PSF",
            subcategory="band {band}",
            labels={"band": "{band}", "figure": "star fits: chi-square vs G"},
        ),
    log:
        "logs/plot_extended_psf/{band}.log",
    benchmark:
        "benchmarks/plot_extended_psf/{band}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        annular_flux_radii=config["annular_flux_radii"],
        bad_mask_planes=config["bad_mask_planes"],
    script:
        "../scripts/plot_extended_psf.py"


rule stars_table:
    input:
        psf="results/extended_psf/{band}.fits",
        stamps=band_stamps,
    output:
        report(
            "results/plots/{band}_stars.tsv",
            caption="../report/stars.rst",
            category="Stars",
            subcategory="band {band}",
            labels={"band": "{band}", "table": "stars and outcomes"},
        ),
    log:
        "logs/stars_table/{band}.log",
    benchmark:
        "benchmarks/stars_table/{band}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/stars_table.py"


rule software_versions:
    output:
        report(
            "results/report/versions.tsv",
            caption="../report/versions.rst",
            category="Software",
            labels={"table": "software versions"},
        ),
    log:
        "logs/software_versions.log",
    benchmark:
        "benchmarks/software_versions.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../scripts/software_versions.py"
