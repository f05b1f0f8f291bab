#!/usr/bin/env bash
# Stops the one-node Slurm cluster that scripts/start-local-slurm.sh DIR
# started: cancels its jobs, then ends slurmd, slurmctld and munged by the
# pids in DIR (never by name, so other Slurm or munge daemons are left
# alone). Safe to run twice, or after a start that failed halfway.
#
#   scripts/stop-local-slurm.sh DIR [--remove]    # --remove: delete DIR afterwards
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 DIR [--remove]" >&2; exit 1; }
dir=$1
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -s "$1" ] && tr -dc '0-9' <"$1"; }

ctld=$(pid_of "$dir/slurmctld.pid")
slurmd=$(pid_of "$dir/slurmd.pid")
munged=$(pid_of "$dir/munge/munged.pid")

# Cancel every job of this cluster, and give the steps a moment to end.
if [ -f "$dir/slurm.conf" ] && alive "$ctld"; then
    export SLURM_CONF="$dir/slurm.conf"
    ids=$(timeout 10 squeue -h -o %A 2>/dev/null)
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $ids 2>/dev/null
        for _ in $(seq 1 40); do
            [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

# Job steps left over: slurmstepd processes marked as this cluster's (the
# start script puts GANSDE_LOCAL_SLURM=DIR in the daemons' environment), with
# everything they run.
marked() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "GANSDE_LOCAL_SLURM=$dir"; }
tree() {
    local c
    for c in $(pgrep -P "$1"); do tree "$c"; done
    echo "$1"
}
for p in $(pgrep -x slurmstepd); do
    # shellcheck disable=SC2046
    marked "$p" && kill -KILL $(tree "$p") 2>/dev/null
done

for p in "$slurmd" "$ctld" "$munged"; do
    alive "$p" && kill -TERM "$p" 2>/dev/null
done
for _ in $(seq 1 40); do
    alive "$slurmd" || alive "$ctld" || alive "$munged" || break
    sleep 0.25
done
for p in "$slurmd" "$ctld" "$munged"; do
    alive "$p" && kill -KILL "$p" 2>/dev/null
done

if [ "${2:-}" = "--remove" ]; then
    rm -rf "$dir"
fi
exit 0
