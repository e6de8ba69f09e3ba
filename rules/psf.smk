# The extended PSF of each band, stacked from every exposure's stamps of that band.


rule stack_extended_psf:
    input:
        stamps=band_stamps,
    output:
        "results/extended_psf/{band}.fits",
    log:
        "logs/stack_extended_psf/{band}.log",
    benchmark:
        "benchmarks/stack_extended_psf/{band}.tsv"
    conda:
        "../envs/brightstamps.yaml"
    resources:
        mem_mb=stack_mem_mb,
        runtime=60,
    params:
        regions=config["regions"],
        normalization=config["normalization"],
        stack=config["stack"],
        psf_fit=config["psf_fit"],
    script:
        "../scripts/stack_extended_psf.py"
