#!/bin/bash
# Installs every Debian package rlhf needs to build, run and test, and only
# those that are missing (idempotent; `apt-get update` runs only when
# something must be installed). Run as root, or with sudo available.
set -euo pipefail

BUILD="build-essential pkg-config libopenblas-dev libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libjansson-dev libpcre2-dev gnuplot-nox"
# Independent references used by the tests and benchmarks (torch fixtures are
# committed, so tests need only numpy/h5py; torch is for `make bench`).
# clang and its libFuzzer runtime: the fuzz harnesses run inside `make test`.
TEST="python3 python3-numpy python3-h5py clang libclang-rt-14-dev"
BENCH="python3-torch"

want="$BUILD $TEST"
[ "${RLHF_BENCH_DEPS:-0}" = 1 ] && want="$want $BENCH"

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -z "$missing" ]; then
    echo "install-deps: all dependencies present"
    exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
