"""Rule software_versions: the versions of Python and of the packages the workflow ran with, as TSV."""

import platform
from importlib import metadata

import _common

import brightstamps
from brightstamps.files import atomic_output

PACKAGES = ["numpy", "scipy", "astropy", "pandas", "snakemake", "matplotlib"]


def main(smk):
    rows = [("python", platform.python_version()), ("brightstamps", brightstamps.__version__)]
    for name in PACKAGES:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    with atomic_output(smk.output[0]) as tmp:
        tmp.write_text("package\tversion\n" + "".join(f"{n}\t{v}\n" for n, v in rows))


_common.run(main, snakemake)  # noqa: F821 - injected by Snakemake
