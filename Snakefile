# brightstamps: normalized bright-star postage stamps from calibrated exposures.
# The five per-exposure steps are rules/exposure.smk; all science is in the brightstamps package.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/exposure.smk"
include: "rules/psf.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


# A job's notices (a fallback, an empty result) would stay in its log: repeat them at the end.
onstart:
    mark_run_start()


onsuccess:
    print_notices()


onerror:
    print_notices()
