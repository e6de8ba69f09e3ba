#!/usr/bin/env bash
# Stop the daemons that start-slurm.sh started, by their recorded process ids.
set -u
dir=${SLURM_TEST_DIR:-/tmp/brightstamps-slurm}
[ -f "$dir/pids" ] || exit 0
while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
done < "$dir/pids"
rm -f "$dir/pids"
