# The extended PSF of each band, stacked from every exposure's stamps of that band.


rule stack_extended_psf:
    input:
        stamps=band_stamps,
    output:
        "results/extended_psf/{band}.fits",
    params:
        regions=config["regions"],
        normalization=config["normalization"],
        stack=config["stack"],
        psf_fit=config["psf_fit"],
    log:
        "logs/stack_extended_psf/{band}.log",
    benchmark:
        "benchmarks/stack_extended_psf/{band}.tsv"
    resources:
        mem_mb=stack_mem_mb,
        runtime=60,
    conda:
        "../envs/brightstamps.yaml"
    script:
        "../scripts/stack_extended_psf.py"
