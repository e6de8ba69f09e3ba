# brightstamps: `make demo` runs the workflow on simulated data, `make test` runs the test suite,
# `make test-unit` the tests that do not run the workflow (and the doctests), in under a minute.
# Each creates .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test test-unit lint format test-hpc bench config-doc venv clean

$(BIN)/.installed: envs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r envs/requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/snakemake --cores $(CORES) --show-failed-logs

test: venv
	$(BIN)/python -m pytest -q

# every test but those under tests/e2e (marked e2e by tests/conftest.py)
test-unit: venv
	$(BIN)/python -m pytest -q -m "not e2e"

$(BIN)/.lint-installed: envs/lint.txt $(BIN)/.installed
	$(BIN)/pip install --quiet -r envs/lint.txt
	touch $@

# ruff (format and lint, numpydoc docstrings) and snakefmt; `make format` rewrites what lint reports
lint: $(BIN)/.lint-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/snakefmt --check Snakefile rules

format: $(BIN)/.lint-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile rules

# The demo workflow through profiles/slurm on a one-node SLURM started on this machine (root;
# installs Debian's slurm-wlm and munge when missing).
# Exit status 3 of the script means SLURM cannot be started here: it says so and is not a failure.
test-hpc: venv
	PYTHON=$(CURDIR)/$(BIN)/python bash tests/hpc/run-hpc-test.sh || [ $$? -eq 3 ]

# config/README.md is generated from the schema (a test checks it is current).
config-doc: venv
	$(BIN)/python -m brightstamps.configref config/config.schema.yaml > config/README.md

bench: venv
	$(BIN)/python bench/bench.py

clean:
	rm -rf results logs benchmarks resources/demo .snakemake
