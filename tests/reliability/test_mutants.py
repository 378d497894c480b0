"""The object reader fed mutated objects: nothing but pybpfobj.errors escapes.

A deterministic campaign (seeded, so a failure names the mutant that can be
rebuilt) over every object of bpf_progs/: bit flips, interesting values
written over header and section-header fields, truncation, duplicated and
deleted chunks.  Each mutant that parses is also described (what ``inspect``
prints, BTF types resolved), and one in 50 is run through ``pybpfobj
inspect`` in process (``Error: ...``, never an internal error).
CI: 3,000 mutants; PYBPFOBJ_LONG=1: 100,000 (PYBPFOBJ_REL_MUTANTS=N).
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

from pybpfobj.cli.common import Context
from pybpfobj.cli.inspect import describe, render_text
from pybpfobj.cli.main import run
from pybpfobj.errors import BpfError
from pybpfobj.spec.elf import ObjectSpec
from reliability.common import size

MUTANTS = size("PYBPFOBJ_REL_MUTANTS", 3000, 100_000)
SEED = 20261122
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF]


def _mutate(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    b = bytearray(data)
    n = len(b)
    kind = rng.choice(["flip", "flip", "value", "shdr", "ehdr", "truncate", "dup", "delete", "zero"])
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "value":
        i = rng.randrange(n - 8)
        struct.pack_into("<Q", b, i, rng.choice(INTERESTING))
    elif kind in ("shdr", "ehdr"):
        if kind == "ehdr":
            off = rng.randrange(0x10, 0x40 - 4)
        else:
            e_shoff = struct.unpack_from("<Q", b, 0x28)[0]
            e_shentsize, e_shnum = struct.unpack_from("<HH", b, 0x3A)
            off = e_shoff + rng.randrange(max(e_shnum, 1)) * e_shentsize + rng.randrange(0, 0x40 - 4, 4)
        width = rng.choice([1, 2, 4])
        if off + width <= n:
            b[off:off + width] = (rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
    elif kind == "truncate":
        del b[rng.randrange(n):]
    elif kind == "dup":
        i = rng.randrange(n)
        b[i:i] = b[i:i + rng.randint(1, 256)]
    elif kind == "delete":
        i = rng.randrange(n)
        del b[i:i + rng.randint(1, 256)]
    else:
        i = rng.randrange(n)
        b[i:i + rng.randint(1, 64)] = bytes(min(64, n - i))
    return kind, bytes(b)


def _exercise(data: bytes) -> None:
    spec = ObjectSpec.from_bytes(data, "mutant.o")
    text = render_text(describe(spec))
    assert isinstance(text, str)
    spec.to_dict()
    if spec.btf is not None:
        for tid in range(1, min(len(spec.btf), 2000) + 1):
            spec.btf.type_name(tid)


def test_mutated_objects_raise_only_pybpfobj_errors(objs: Path, tmp_path: Path) -> None:
    seeds = {p.name: p.read_bytes() for p in sorted(objs.glob("*.o"))}
    names = sorted(seeds)
    rng = random.Random(SEED)
    failures: list[str] = []
    parsed = rejected = 0
    mutant_file = tmp_path / "mutant.o"
    for i in range(MUTANTS):
        name = names[i % len(names)]
        kind, data = _mutate(rng, seeds[name])
        try:
            _exercise(data)
            parsed += 1
        except BpfError:
            rejected += 1
        except Exception as e:  # noqa: BLE001 - the very thing this test looks for
            failures.append(f"mutant {i} ({kind} of {name}): {type(e).__name__}: {e}")
            if len(failures) >= 10:
                break
        if i % 50 == 0:
            mutant_file.write_bytes(data)
            out, err = io.StringIO(), io.StringIO()
            rc = run(["inspect", str(mutant_file)], Context(out=out, err=err))
            if rc != 0 and not err.getvalue().startswith("Error: "):
                failures.append(f"mutant {i} ({kind} of {name}): inspect rc {rc} without Error: {err.getvalue()!r}")
            if "internal error" in err.getvalue() or "Traceback" in err.getvalue():
                failures.append(f"mutant {i} ({kind} of {name}): inspect: {err.getvalue().strip()}")
    print(f"{MUTANTS} mutants: {parsed} parsed, {rejected} rejected with a pybpfobj error, {len(failures)} failures")
    assert not failures, "\n".join(failures)
    # the campaign exercised both sides: mutants the reader took and ones it refused
    assert parsed > MUTANTS // 20 and rejected > MUTANTS // 20, (parsed, rejected)
