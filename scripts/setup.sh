#!/usr/bin/env bash
# Set up pybpfobj on a Debian 12 machine as root: system packages (only when
# missing), a virtual environment in .venv with the package and its test
# extra, and our BPF programs built into bpf_progs/build/.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="clang-19 llvm libbpf1 libbpf-dev bpftool iproute2 make gcc python3-venv python3-pip graphviz"
# tests/ship/test_docker.py: a Docker daemon and a Debian base image made with debootstrap
PKGS="$PKGS docker.io debootstrap"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing system packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi

# The interpreter: PYTHON when set, else Debian's own /usr/bin/python3 (the one
# python3-venv above is for), else python3 from PATH.  A python3 built by hand or
# by pyenv that comes first on PATH usually runs its interpreter from a shared
# libpython; Debian links it into the executable, and ran our in-process
# open+load 2-3% faster here (bench/bench_load.py).  An existing .venv is kept:
# remove it to re-create it with another interpreter.
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x /usr/bin/python3 ]; then
    PY=/usr/bin/python3
else
    PY=python3
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.pybpfobj-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    echo "setup: installing pybpfobj and its test extra into .venv" >&2
    # pip's and setuptools' chatter goes to a log, shown only if the install fails
    log=$(mktemp)
    if ! { .venv/bin/python -m pip install -q --upgrade pip &&
           .venv/bin/python -m pip install -q -e '.[test]'; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup: pip install failed (output above)" >&2
        exit 1
    fi
    rm -f "$log"
    touch "$stamp"
fi

make -s -C bpf_progs
