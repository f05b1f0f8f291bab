#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages gansde needs to build and test:
# HDF5 (library + h5dump), OpenMPI, libclang (for the MPI bindings), and
# python3-h5py (tests open results files the way researchers do), GNU time
# (the scaling benchmark), and slurm-wlm with munge (tests/slurm.rs runs the
# batch scripts of slurm/ on a one-node Slurm: scripts/start-local-slurm.sh).
# Safe to run repeatedly; uses sudo when not root.
set -euo pipefail
pkgs=(libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin libclang-dev pkg-config python3-h5py time slurm-wlm munge)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
