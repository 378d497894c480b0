#!/usr/bin/env python3
"""Map-in-map through a generated skeleton: create, install and swap inner maps.

``mapinmap.o``'s program increments key 0 of the inner map in slot 0 of
``outer_array`` (declared to hold ``inner_map0``) and of ``outer_hash``.
We run it with BPF_PROG_TEST_RUN and watch which inner map counts.

Run it as root from a checkout, after building the objects (``make -C bpf_progs``)::

    .venv/bin/python examples/mapinmap_app.py
    # or, without the venv of scripts/setup.sh:
    PYTHONPATH=. python3 examples/mapinmap_app.py

It generates its skeleton itself (into ``--skel-dir``, default a temporary
directory), as ``pybpfobj gen skeleton bpf_progs/build/mapinmap.o output
mapinmap_skel.py`` would at an application's build time.  ``--objs``
defaults to this checkout's bpf_progs/build.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pybpfobj.skeleton.generator import import_skeleton


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objs", default=Path(__file__).resolve().parent.parent / "bpf_progs" / "build",
                    type=Path)
    ap.add_argument("--pin-root", default=None)
    ap.add_argument("--skel-dir", default=None, type=Path)
    args = ap.parse_args()
    # An application imports the module `pybpfobj gen skeleton` wrote at build time;
    # the example makes it now, so it always matches the objects in bpf_progs/build.
    mod = import_skeleton(args.objs / "mapinmap.o", "mapinmap_skel", args.skel_dir)

    with mod.Mapinmap.open_and_load(pin_root=args.pin_root) as skel:
        outer = skel.maps.outer_array
        run = skel.progs.lookup_inner.test_run

        # 1. the declared initial value is in place: slot 0 -> inner_map0
        assert outer.inner_id(0) == skel.maps.inner_map0.map.id
        run(bytes(64))
        print("inner_map0[0] =", skel.maps.inner_map0[0])

        # 2. a fresh inner map of the template's spec, installed in slot 0 (a swap)
        blue = outer.new_inner()
        blue[0] = 1000
        outer[0] = blue
        run(bytes(64))
        print("after swap: blue[0] =", blue[0], " inner_map0[0] =", skel.maps.inner_map0[0])
        assert (blue[0], skel.maps.inner_map0[0]) == (1001, 1)

        # 3. swap back, and open what is installed, typed like the template
        outer[0] = skel.maps.inner_map0
        run(bytes(64))
        current = outer.inner(0)
        print("swapped back: slot 0 is", current.name, "value", current[0])
        assert current[0] == 2

        # 4. hash_of_maps: inner hash maps may be sized differently from the template
        big = skel.maps.outer_hash.new_inner(max_entries=1024)
        skel.maps.outer_hash[0] = big
        run(bytes(64))
        print("outer_hash slot 0:", skel.maps.outer_hash.inner(0).map.max_entries, "entries,",
              "value", big.get(0))
        assert big.get(0) is None  # the program only increments existing keys
        big[0] = 7
        run(bytes(64))
        assert big[0] == 8
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
