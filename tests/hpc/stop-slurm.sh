#!/usr/bin/env bash
# Stop the daemons that start-slurm.sh started, by their recorded process ids.
set -u
dir=${SLURM_TEST_DIR:-/tmp/brightstamps-slurm}
[ -f "$dir/pids" ] || exit 0
while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
done < "$dir/pids"
rm -f "$dir/pids"
# Remove the slurm.conf that start-slurm.sh wrote (it carries its marker): with it left behind,
# every `scontrol` call, which the SLURM executor plugin makes each time Snakemake starts, waits
# 9 s for a controller that is no longer there.
conf=/etc/slurm/slurm.conf
if [ -f "$conf" ] && head -1 "$conf" | grep -q "written by brightstamps"; then
    rm -f "$conf"
fi
