#!/bin/sh
# Tail-call swapping with the pybpfobj CLI only (bpftool-map(8)'s example).
#   examples/tailcall_swap.sh [BPFFS_DIR]     (as root; default /sys/fs/bpf)
# PYBPFOBJ may name the command; the default is the checkout's .venv/bin/pybpfobj
# (made by scripts/setup.sh), else `pybpfobj` on PATH.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
BPFFS=${1:-/sys/fs/bpf}
if [ -z "${PYBPFOBJ:-}" ]; then
    if [ -x "$HERE/.venv/bin/pybpfobj" ]; then PYBPFOBJ="$HERE/.venv/bin/pybpfobj"; else PYBPFOBJ=pybpfobj; fi
fi
PROGS=$BPFFS/tailcall_progs
MAPS=$BPFFS/tailcall_maps
PKT=$(mktemp)
cleanup() { rm -rf "$PROGS" "$MAPS" "$PKT"; }
trap cleanup EXIT
head -c 64 /dev/zero > "$PKT"

$PYBPFOBJ prog loadall "$HERE/bpf_progs/build/tailcall.o" "$PROGS" pinmaps "$MAPS"

echo "slot 0 empty (XDP_DROP = 1):"
$PYBPFOBJ prog run pinned "$PROGS/main_func" data_in "$PKT"

$PYBPFOBJ map update pinned "$MAPS/jmp_table" key 0 0 0 0 value pinned "$PROGS/bpf_func_process"
echo "slot 0 = bpf_func_process (XDP_PASS = 2):"
$PYBPFOBJ prog run pinned "$PROGS/main_func" data_in "$PKT"

$PYBPFOBJ map update pinned "$MAPS/jmp_table" key 0 0 0 0 value pinned "$PROGS/bpf_func_debug"
echo "slot 0 = bpf_func_debug (XDP_TX = 3):"
$PYBPFOBJ prog run pinned "$PROGS/main_func" data_in "$PKT"
