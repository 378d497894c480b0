#!/usr/bin/env python3
"""XDP packet counter through a generated skeleton.

- configuration in ``.rodata``: the verdict the program returns, set before load;
- per-CPU statistics in ``struct stats``, read back typed (one struct per CPU);
- packets are run through the program with BPF_PROG_TEST_RUN (no interface needed);
- the stats map is pinned under ``--pin-root`` (a bpffs) and unpinned at the end.

Run it as root from a checkout, after building the objects (``make -C bpf_progs``)::

    .venv/bin/python examples/xdp_counter_app.py [--drop] [--pin-root BPFFS_DIR]
    # or, without the venv of scripts/setup.sh:
    PYTHONPATH=. python3 examples/xdp_counter_app.py

It generates its skeleton itself (into ``--skel-dir``, default a temporary
directory), as ``pybpfobj gen skeleton bpf_progs/build/xdp_counter.o output
xdp_counter_skel.py`` would at an application's build time.  ``--objs``
defaults to this checkout's bpf_progs/build.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pybpfobj.skeleton.generator import import_skeleton

XDP_DROP, XDP_PASS = 1, 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objs", default=Path(__file__).resolve().parent.parent / "bpf_progs" / "build",
                    type=Path)
    ap.add_argument("--pin-root", default=None, help="a bpffs directory to pin the stats map in")
    ap.add_argument("--skel-dir", default=None, type=Path)
    ap.add_argument("--drop", action="store_true", help="configure the program to drop")
    args = ap.parse_args()
    # An application imports the module `pybpfobj gen skeleton` wrote at build time;
    # the example makes it now, so it always matches the objects in bpf_progs/build.
    mod = import_skeleton(args.objs / "xdp_counter.o", "xdp_counter_skel", args.skel_dir)

    with mod.XdpCounter.open(pin_root=args.pin_root) as skel:
        want = XDP_DROP if args.drop else XDP_PASS
        skel.rodata.verdict = want                      # .rodata: only before load
        skel.load()

        sizes = [64, 128, 1500]
        for size in sizes:
            result = skel.progs.xdp_count.test_run(bytes(size))
            assert result.retval == want, result

        per_cpu = skel.maps.stats[0]                     # list of `stats`, one per possible CPU
        packets = sum(s.packets for s in per_cpu)
        nbytes = sum(s.bytes for s in per_cpu)
        print(f"verdict={want} packets={packets} bytes={nbytes} cpus={len(per_cpu)}")
        assert (packets, nbytes) == (len(sizes), sum(sizes))

        if args.pin_root:
            pin = os.path.join(args.pin_root, "xdp_counter_stats")
            skel.maps.stats.pin(pin)
            print(f"pinned stats at {pin}")
            os.unlink(pin)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
