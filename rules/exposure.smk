# The five per-exposure steps. Each writes its own file under results/{exposure}/.


rule sky_correction:
    input:
        unpack(sky_correction_inputs),
    output:
        intermediate("results/{exposure}/sky_model.fits"),
    log:
        "logs/sky_correction/{exposure}.log",
    benchmark:
        "benchmarks/sky_correction/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=image_mb,
        runtime=10,
    params:
        exposure=exposure_params,
        do_apply_sky_corr=config["do_apply_sky_corr"],
        fit=config["sky_fit"],
    script:
        "../scripts/sky_correction.py"


rule catalog_matching:
    input:
        image=image_file,
        catalog=CATALOG_INPUTS,
    output:
        intermediate("results/{exposure}/stars.ecsv"),
    log:
        "logs/catalog_matching/{exposure}.log",
    benchmark:
        "benchmarks/catalog_matching/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        exposure=exposure_params,
        catalog=config["catalog"],
        mag_limit=config["mag_limit"],
        stamp_size=config["stamp_size"],
        proper_motion=config["proper_motion"],
    script:
        "../scripts/catalog_matching.py"


rule stamp_extraction:
    input:
        unpack(exposure_files),
        sky="results/{exposure}/sky_model.fits",
        stars="results/{exposure}/stars.ecsv",
    output:
        intermediate("results/{exposure}/stamps_raw.fits"),
    log:
        "logs/stamp_extraction/{exposure}.log",
    benchmark:
        "benchmarks/stamp_extraction/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=image_mb,
        runtime=10,
    params:
        exposure=exposure_params,
        stamp_size=config["stamp_size"],
        do_remove_detected=config["do_remove_detected"],
    script:
        "../scripts/stamp_extraction.py"


rule warping:
    input:
        stamps="results/{exposure}/stamps_raw.fits",
        image=image_file,
    output:
        intermediate("results/{exposure}/stamps_warped.fits"),
    log:
        "logs/warping/{exposure}.log",
    benchmark:
        "benchmarks/warping/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        exposure=exposure_params,
        kernel=config["warping_kernel"],
        do_apply_transform=config["do_apply_transform"],
        model_stamp_buffer=config["model_stamp_buffer"],
        yaw_deg=detector_yaw,
        orientation=config["orientation"],
        boresight=config["boresight"],
    script:
        "../scripts/warping.py"


rule normalization:
    input:
        "results/{exposure}/stamps_warped.fits",
    output:
        "results/{exposure}/bright_star_stamps.fits",
    log:
        "logs/normalization/{exposure}.log",
    benchmark:
        "benchmarks/normalization/{exposure}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        annular_flux_radii=config["annular_flux_radii"],
        annular_flux_statistic=config["annular_flux_statistic"],
        num_sigma_clip=config["num_sigma_clip"],
        num_iter=config["num_iter"],
        bad_mask_planes=config["bad_mask_planes"],
        min_valid_annulus_fraction=config["min_valid_annulus_fraction"],
        discard_nan_flux_stars=config["discard_nan_flux_stars"],
        normalize_variance=config["normalize_variance"],
        config_hash=CONFIG_HASH,
    script:
        "../scripts/normalization.py"
