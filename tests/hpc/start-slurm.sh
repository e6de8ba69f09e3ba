#!/usr/bin/env bash
# Start a one-node SLURM on this machine for `make test-hpc`: munged, slurmctld and slurmd, with a
# slurm.conf of our own in /etc/slurm (where job steps look for it; an existing slurm.conf that
# this script did not write is never touched) and state under $SLURM_TEST_DIR. Installs Debian's
# slurm-wlm and munge when missing. Records the daemons' process ids in $SLURM_TEST_DIR/pids so
# that stop-slurm.sh stops exactly what this script started.
set -euo pipefail
dir=${SLURM_TEST_DIR:-/tmp/brightstamps-slurm}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "start-slurm: installing slurm-wlm and munge" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

rm -rf "$dir"
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
chown -R slurm:slurm "$dir"
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
conf=/etc/slurm/slurm.conf
marker="# written by brightstamps tests/hpc/start-slurm.sh"
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
    echo "start-slurm: $conf exists and is not ours; not starting a test SLURM" >&2
    exit 1
fi
mkdir -p /etc/slurm
cat > "$conf" <<CONF
$marker
ClusterName=brightstamps
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# no systemd here: munged runs as the munge user, the slurm daemons as root and fork by themselves
mkdir -p /run/munge
chown munge:munge /run/munge
runuser -u munge -- /usr/sbin/munged --force
slurmctld
slurmd
record_pids() {  # so that stop-slurm.sh stops them, even if the node never comes up
    for pidfile in /run/munge/munged.pid "$dir/slurmctld.pid" "$dir/slurmd.pid"; do
        cat "$pidfile" 2>/dev/null || true
    done > "$dir/pids"
}
sleep 1
record_pids

for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then
        break
    fi
    sleep 0.5
done
record_pids
if ! sinfo -h -o %T 2>/dev/null | grep -qE '^idle'; then
    echo "start-slurm: the node did not become idle; see $dir/log" >&2
    exit 1
fi
echo "start-slurm: one-node SLURM up ($cpus CPUs, $mem_mb MB); logs in $dir/log"
