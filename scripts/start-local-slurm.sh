#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine, for trying and testing the
# batch scripts in slurm/ (tests/slurm.rs uses it). Everything lives in DIR:
# a munge key and socket, slurm.conf, state, spool, logs and pid files; no
# system file is touched. Needs root (slurmd runs jobs as the submitting
# user) and Debian's slurm-wlm and munge (scripts/setup-debian.sh).
#
#   scripts/start-local-slurm.sh DIR     # then: export SLURM_CONF=DIR/slurm.conf
#   sbatch slurm/weak-error.sbatch jobs/lq.toml --set estimate.paths=20000
#   scripts/stop-local-slurm.sh DIR
#
# The node is this host (its name, CPUs and memory from `slurmd -C`), reached
# at 127.0.0.1, in one partition `debug` (MaxTime 30 min). Plugins avoid
# cgroups (proctrack/linuxproc, task/none), so it runs in containers and
# VMs without a cgroup setup. There is no accounting database: finished jobs
# stay visible to `scontrol show job` for MinJobAge (10 min), and every job
# end (including each requeue) is appended to DIR/jobcomp.txt.
#
# Ports: free ones are picked (SLURMCTLD_PORT / SLURMD_PORT override).
# Prints `export SLURM_CONF=...` on success; exits non-zero, with the daemon
# logs' last lines, if the node is not idle within 60 s.
set -euo pipefail

die() { echo "start-local-slurm: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 DIR"
[ "$(id -u)" -eq 0 ] || die "needs root (slurmd must be able to run jobs as any user)"
for b in munged slurmctld slurmd sbatch scontrol; do
    command -v "$b" >/dev/null || die "$b not found; install slurm-wlm and munge (scripts/setup-debian.sh)"
done

mkdir -p "$1"
dir=$(cd "$1" && pwd)
chmod 700 "$dir"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo "$1"
}
ctld_port=${SLURMCTLD_PORT:-$(free_port 6817)}
slurmd_port=${SLURMD_PORT:-$(free_port 6818)}
[ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$((ctld_port + 1))

# munge: a private key and socket (a system munged, if any, is left alone).
key="$dir/munge/munge.key"
if [ ! -s "$key" ]; then
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$key" --force
    else
        dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
    fi
fi
chmod 600 "$key"
sock="$dir/munge/munge.socket"
GANSDE_LOCAL_SLURM="$dir" munged --force --key-file="$key" --socket="$sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" ||
    die "munged did not start: $(tail -n 5 "$dir/log/munged.log" 2>/dev/null)"

# The node as slurmd sees it (CPUs, sockets, cores, threads, memory).
node_line=$(slurmd -C | head -n 1)
node=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$node_line")
[ -n "$node" ] || die "slurmd -C gave no node line: $node_line"
hw=${node_line#NodeName="$node" }
# Keep a little memory back: a node that reports less than RealMemory is drained.
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
if [ -n "$mem" ]; then
    hw=${hw/RealMemory=$mem/RealMemory=$((mem * 95 / 100))}
fi

cat >"$dir/slurm.conf" <<EOF
# One-node test cluster written by scripts/start-local-slurm.sh.
ClusterName=gansde-local
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long Slurm holds a requeued job before it may
# start again (120 s by default; a job released sooner fails with "Job
# credential revoked").
AuthInfo=socket=$sock,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: processes are tracked through /proc, tasks are not confined.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Schedule promptly (tests wait on requeued jobs); keep finished jobs for
# scontrol show job for 10 minutes.
SchedulerParameters=sched_interval=5,bf_interval=5,sched_min_interval=100000
MinJobAge=600
ReturnToService=2
JobRequeue=1
KillWait=15
InactiveLimit=0
OverTimeLimit=0
MessageTimeout=20
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=30 State=UP OverSubscribe=NO
EOF

export SLURM_CONF="$dir/slurm.conf"
echo "export SLURM_CONF=$SLURM_CONF" >"$dir/env.sh"
# Marks the daemons (and the slurmstepd they fork) as this cluster's, for
# scripts/stop-local-slurm.sh.
export GANSDE_LOCAL_SLURM="$dir"

slurmctld -f "$SLURM_CONF" -c ||
    die "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" ||
    die "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.log" 2>/dev/null)"

for _ in $(seq 1 120); do
    state=$(scontrol show node "$node" 2>/dev/null | sed -n 's/.*State=\([A-Z+_]*\).*/\1/p' | head -n 1)
    if [ "$state" = IDLE ]; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.5
done
{
    echo "start-local-slurm: node $node not idle within 60 s (state: ${state:-unknown})"
    scontrol show node "$node" 2>&1 | sed 's/^/  /'
    for l in slurmctld slurmd munged; do
        echo "--- $dir/log/$l.log"
        tail -n 20 "$dir/log/$l.log" 2>/dev/null
    done
} >&2
exit 1
