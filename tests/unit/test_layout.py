"""House rules that a test can check: the package never imports Snakemake; envs agree."""

import importlib
import pkgutil
import re
import subprocess
import sys

import yaml

import brightstamps
from conftest import REPO


def test_package_never_imports_snakemake():
    names = [m.name for m in pkgutil.iter_modules(brightstamps.__path__)]
    code = "import sys\n" + "".join(f"import brightstamps.{n}\n" for n in names) + \
        "assert 'snakemake' not in sys.modules, 'snakemake imported'\n"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    assert {"sky", "catalog", "extract", "warp", "normalize", "stampsfile", "simulate"} <= set(names)


def test_conda_env_lists_the_pinned_requirements():
    pins = {}
    for line in (REPO / "envs" / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    env = yaml.safe_load((REPO / "envs" / "brightstamps.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", p).groups() for p in pip)
    assert {k.lower(): v for k, v in conda_pins.items()} == pins


def test_five_steps_are_five_rules_scripts_and_modules():
    rules = (REPO / "rules" / "exposure.smk").read_text()
    for rule, module in [("sky_correction", "sky"), ("catalog_matching", "catalog"),
                         ("stamp_extraction", "extract"), ("warping", "warp"), ("normalization", "normalize")]:
        assert f"rule {rule}:" in rules
        script = (REPO / "scripts" / f"{rule}.py").read_text()
        assert f"{module}." in script
        importlib.import_module(f"brightstamps.{module}")
