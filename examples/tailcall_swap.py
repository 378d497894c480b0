#!/usr/bin/env python3
"""Tail-call swapping from Python (the bpftool-map(8) scenario).

Loads bpf_progs/build/tailcall.o, pins its jmp_table under a bpffs
directory, and swaps bpf_func_process (XDP_PASS) and bpf_func_debug
(XDP_TX) into slot 0 while main_func keeps being test-run.

As root, from the checkout, after ``bash scripts/setup.sh`` (which builds
bpf_progs/ and installs pybpfobj into .venv)::

    .venv/bin/python examples/tailcall_swap.py [BPFFS_DIR]   (default /sys/fs/bpf)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pybpfobj.loader import BpfObject
from pybpfobj.tailcall import swap

VERDICTS = {1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX"}
OBJ = Path(__file__).resolve().parent.parent / "bpf_progs" / "build" / "tailcall.o"


def main() -> int:
    bpffs = sys.argv[1] if len(sys.argv) > 1 else "/sys/fs/bpf"
    pin = os.path.join(bpffs, "tailcall_jmp_table")
    packet = bytes(64)
    with BpfObject(OBJ) as obj:
        obj.load()
        progs, jmp_table = obj.programs, obj.maps["jmp_table"]
        jmp_table.pin(pin)
        try:
            entry = progs["main_func"]
            print("empty slot 0:", VERDICTS[entry.test_run(packet).retval])

            jmp_table[0] = progs["bpf_func_process"]           # plain item assignment
            print("slot 0 = bpf_func_process:", VERDICTS[entry.test_run(packet).retval])

            # swap() checks every program against the table first, then reports
            for change in swap(jmp_table, {0: progs["bpf_func_debug"], 1: progs["bpf_func_process"]}):
                print(f"slot {change.slot}: {change.old_name} -> {change.new_name}")
            print("slot 0 = bpf_func_debug:", VERDICTS[entry.test_run(packet).retval])

            swap(jmp_table, {0: progs["bpf_func_process"], 1: None})
            print("slot 0 = bpf_func_process:", VERDICTS[entry.test_run(packet).retval])
        finally:
            os.unlink(pin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
