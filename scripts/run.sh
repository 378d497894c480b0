#!/usr/bin/env bash
# Set up everything and run the main job on a bundled default object.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pybpfobj inspect bpf_progs/build/xdp_counter.o "$@"
