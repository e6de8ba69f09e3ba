# brightstamps: `make demo` runs the workflow on simulated data, `make test` runs the test suite.
# Both create .venv from the pinned requirements first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: demo test bench venv clean

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

bench: venv
	$(BIN)/python tests/bench.py

clean:
	rm -rf results logs benchmarks resources/demo .snakemake
