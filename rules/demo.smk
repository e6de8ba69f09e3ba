# The simulated demo data set (known PSF, known stars), made on demand.


rule simulate_demo:
    output:
        exposures=DEMO_IMAGES,
        sky_models=expand(
            "{outdir}/demo_det{det}_sky.fits", outdir=config["demo"]["outdir"], det=[0, 1, 2, 3]
        ),
        catalog=f"{config['demo']['outdir']}/catalog.fits",
        truth=DEMO_TRUTH,
    log:
        "logs/simulate_demo.log",
    benchmark:
        "benchmarks/simulate_demo.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=config["demo"]["seed"],
        detector_size=config["demo"]["detector_size"],
        n_bright=config["demo"]["n_bright"],
        n_faint=config["demo"]["n_faint"],
        n_field=config["demo"]["n_field"],
    script:
        "../scripts/simulate_demo.py"
