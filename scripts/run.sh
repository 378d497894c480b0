#!/usr/bin/env bash
# Set up everything, then the main job on a bundled object: load
# xdp_counter.o and pin its programs and maps on a private bpffs, show
# what was pinned, and take it all away again (unmount).  Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: loading BPF programs needs root: sudo bash scripts/run.sh" >&2
    exit 1
fi
bash scripts/setup.sh

pb() { echo "+ pybpfobj $*"; .venv/bin/pybpfobj "$@"; }
DIR=$(mktemp -d /tmp/pybpfobj-run.XXXXXX)
trap 'umount "$DIR" 2>/dev/null || true; rmdir "$DIR"' EXIT
mount -t bpf bpf "$DIR"

pb loadall bpf_progs/build/xdp_counter.o "$DIR/progs" pinmaps "$DIR/maps"
pb prog show pinned "$DIR/progs/xdp_count"
pb map dump pinned "$DIR/maps/stats"
