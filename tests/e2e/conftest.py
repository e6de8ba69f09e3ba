"""End-to-end fixtures: the workflow run on the simulated demo data."""

import shutil

import pytest
from workflow_runs import run_snakemake


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, repo):
    """The default configuration (as `make demo`), run from a directory of its own."""
    run = tmp_path_factory.mktemp("demo_run")
    shutil.copytree(repo / "config", run / "config")
    run_snakemake(run)
    return run
