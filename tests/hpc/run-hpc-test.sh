#!/usr/bin/env bash
# make test-hpc: the demo workflow through profiles/slurm on a one-node SLURM started here.
# Checks from SLURM's own log that every job went through sbatch, and that the outputs equal
# those of a local run byte for byte. Stops the daemons it started. Exit status 3: SLURM could not
# be started here (not a test failure; .ci/run reports it and goes on).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d /tmp/brightstamps-hpc.XXXXXX)
chmod 755 "$work"  # the slurm user must reach its state directories
export SLURM_TEST_DIR=$work/slurm
trap 'bash "$repo/tests/hpc/stop-slurm.sh"' EXIT
if ! bash "$repo/tests/hpc/start-slurm.sh"; then
    echo "test-hpc: cannot start a SLURM on this machine (see the lines above); the SLURM test was not run"
    exit 3
fi

for run in local slurm; do
    mkdir -p "$work/$run"
    cp -r "$repo/config" "$work/$run/"
done
mkdir -p "$work/profile"
sed 's/"<your_account>"/"brightstamps"/; s/"<your_partition>"/"debug"/' "$repo/profiles/slurm/config.yaml" \
    > "$work/profile/config.yaml"

echo "test-hpc: local reference run"
(cd "$work/local" && "$python" -m snakemake -s "$repo/Snakefile" --cores 2 --quiet >"$work/local.out" 2>&1)
echo "test-hpc: the same through SLURM (profiles/slurm)"
start=$(date +%s)
if ! (cd "$work/slurm" && timeout 1500 "$python" -m snakemake -s "$repo/Snakefile" \
        --workflow-profile "$work/profile" >"$work/slurm.out" 2>&1); then
    tail -40 "$work/slurm.out"
    echo "test-hpc: FAILED: the SLURM run did not complete (log: $work/slurm.out)"
    exit 1
fi
echo "test-hpc: SLURM run took $(( $(date +%s) - start )) s"

# every job Snakemake ran went through sbatch: its SLURM job ids are all in slurmctld's record of
# batch submissions, and nothing but the target rule `all` ran on the submitting host
submitted=$(grep -oE "submitted with SLURM jobid [0-9]+" "$work/slurm.out" | awk '{print $NF}' | sort -n)
recorded=$(grep -oE "_slurm_rpc_submit_batch_job: JobId=[0-9]+" "$SLURM_TEST_DIR/log/slurmctld.log" \
    | sed 's/.*=//' | sort -n)
[ -n "$submitted" ] || { echo "test-hpc: FAILED: no job was submitted"; exit 1; }
missing=$(comm -23 <(echo "$submitted") <(echo "$recorded"))
[ -z "$missing" ] || { echo "test-hpc: FAILED: jobs not recorded by slurmctld: $missing"; exit 1; }
local_rules=$(grep -oE "^localrule [a-z_]+" "$work/slurm.out" | sort -u | grep -v "localrule all" || true)
[ -z "$local_rules" ] || { echo "test-hpc: FAILED: ran outside SLURM: $local_rules"; exit 1; }
echo "test-hpc: $(echo "$submitted" | wc -l) sbatch submissions, all in slurmctld's log"

# the same bytes as the local run
status=0
for dir in results resources; do
    if ! diff -r -q "$work/local/$dir" "$work/slurm/$dir"; then status=1; fi
done
[ $status -eq 0 ] || { echo "test-hpc: FAILED: SLURM and local outputs differ"; exit 1; }
echo "test-hpc: $(find "$work/slurm/results" "$work/slurm/resources" -type f | wc -l) files identical to the local run"
echo "test-hpc: passed"
