"""House rules that a test can check: the package never imports Snakemake; envs agree; the config
reference is generated from the schema."""

import importlib
import pkgutil
import re
import subprocess
import sys

import yaml

import brightstamps
from brightstamps.configref import render_reference


def test_package_never_imports_snakemake(repo):
    names = [m.name for m in pkgutil.iter_modules(brightstamps.__path__)]
    code = (
        "import sys\n"
        + "".join(f"import brightstamps.{n}\n" for n in names)
        + "assert 'snakemake' not in sys.modules, 'snakemake imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo)
    assert {"sky", "catalog", "extract", "warp", "normalize", "stampsfile", "simulate"} <= set(names)


def test_conda_env_lists_the_pinned_requirements(repo):
    pins = {}
    for line in (repo / "envs" / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    env = yaml.safe_load((repo / "envs" / "brightstamps.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", p).groups() for p in pip)
    assert {k.lower(): v for k, v in conda_pins.items()} == pins


def test_five_steps_are_five_rules_scripts_and_modules(repo):
    rules = (repo / "rules" / "exposure.smk").read_text()
    for rule, module in [
        ("sky_correction", "sky"),
        ("catalog_matching", "catalog"),
        ("stamp_extraction", "extract"),
        ("warping", "warp"),
        ("normalization", "normalize"),
    ]:
        assert f"rule {rule}:" in rules
        script = (repo / "scripts" / f"{rule}.py").read_text()
        assert f"{module}." in script
        importlib.import_module(f"brightstamps.{module}")


def test_config_reference_is_generated_from_the_schema(repo):
    expected = render_reference(repo / "config" / "config.schema.yaml")
    assert (repo / "config" / "README.md").read_text() == expected, "run `make config-doc`"
