"""swap() reports programs by their full names, as the README's tail-call example prints them.

The kernel keeps 15 characters of a program name; ``bpf_func_process``
has 16, so the name of the program a slot held is completed from BTF
(as bpftool's ``prog show`` does), not cut to ``bpf_func_proces``.
"""

from __future__ import annotations

from pathlib import Path

from pybpfobj.loader import BpfObject
from pybpfobj.tailcall import swap


def test_swap_names_the_replaced_program_in_full_past_the_kernels_15_characters(
        need_root: None, objs: Path) -> None:
    with BpfObject(objs / "tailcall.o") as obj:
        obj.load()
        progs, table = obj.programs, obj.maps["jmp_table"]
        table[0] = progs["bpf_func_process"]
        (change,) = swap(table, {0: progs["bpf_func_debug"]})
        assert (change.old_name, change.new_name) == ("bpf_func_process", "bpf_func_debug")
        (back,) = swap(table, {0: None})
        assert (back.old_name, back.new_name) == ("bpf_func_debug", None)
