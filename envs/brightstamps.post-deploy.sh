#!/usr/bin/env bash
# Run by Snakemake once, in the new conda env of envs/brightstamps.yaml with that env active
# (--software-deployment-method conda): install the workflow's own package, as `make` does in the
# venv. The env file cannot name it: Snakemake copies the file to <conda prefix>/<hash>.yaml and
# conda runs pip from there, so a relative path would not reach the checkout. rules/common.smk
# exports the checkout's directory. Editable, so that the jobs run the checkout's current code;
# each job checks that the package it imports is its checkout's (brightstamps.config.check_package_home).
set -euo pipefail
: "${BRIGHTSTAMPS_WORKFLOW:?is not set (rules/common.smk exports the workflow checkout directory)}"
python -m pip install --no-deps --editable "$BRIGHTSTAMPS_WORKFLOW"
