#!/usr/bin/env bash
# Set up everything, then the main job on a bundled object: load
# xdp_counter.o and pin its programs and maps on a private bpffs, show the
# program, run a test packet through it, dump its counters, and take it all
# away again (unmount).  Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: loading BPF programs needs root: sudo bash scripts/run.sh" >&2
    exit 1
fi
bash scripts/setup.sh

pb() { echo "+ pybpfobj $*"; .venv/bin/pybpfobj "$@"; }
DIR=$(mktemp -d /tmp/pybpfobj-run.XXXXXX)
PKT="$DIR.pkt"
trap 'umount "$DIR" 2>/dev/null || true; rmdir "$DIR"; rm -f "$PKT"' EXIT
mount -t bpf bpf "$DIR"
echo "a private bpffs at $DIR (unmounted at the end)"
head -c 64 /dev/zero > "$PKT"

pb loadall bpf_progs/build/xdp_counter.o "$DIR/progs" pinmaps "$DIR/maps"
echo "pinned: $(cd "$DIR" && echo progs/* maps/*)"
pb prog show pinned "$DIR/progs/xdp_count"
pb prog run pinned "$DIR/progs/xdp_count" data_in "$PKT"
echo "(2 is XDP_PASS; the program counted the packet in its per-CPU stats map)"
pb map dump pinned "$DIR/maps/stats"
