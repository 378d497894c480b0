"""``pybpfobj inspect OBJ``: what an object file declares, without loading it.

Programs (name, section, type, expected attach type, instructions, license),
maps in libbpf's order (the ``map idx`` numbers of ``prog load``), their
key/value sizes with BTF type names, max_entries, flags, pinning, inner map
templates and initial values, and the global variables of data maps with
their initial values formatted by BTF type.  Text for people, ``-j``/``-p``
for scripts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pybpfobj.cli.common import Context, UsageError, hexbytes

if TYPE_CHECKING:
    from pybpfobj.spec.btf import BTF
    from pybpfobj.spec.elf import MapSpec, ObjectSpec, ProgramSpec, VarSpec

USAGE = """Usage: pybpfobj inspect OBJ
       pybpfobj -j [-p] inspect OBJ

       Describe the programs, maps (in 'map idx' order) and global variables
       of a BPF object file without loading it. -m tolerates unknown map fields.
"""

_PIN_NAMES = {0: "none", 1: "by_name"}


def do_inspect(ctx: Context, args: list[str]) -> int:
    """Entry point of ``pybpfobj inspect``."""
    if not args or args[0] == "help":
        if args:
            if ctx.json:
                ctx.emit_json(None)  # bpftool's help in JSON mode
            else:
                ctx.out.write(USAGE)
            return 0
        raise UsageError("expected an object file", USAGE)
    if len(args) > 1:
        raise UsageError(f"too many arguments: '{args[1]}'", USAGE)
    from pybpfobj.spec.elf import ObjectSpec

    # a missing or malformed file raises ObjectFormatError naming it: "Error: ..."
    spec = ObjectSpec.from_file(args[0], mapcompat=ctx.mapcompat)
    desc = describe(spec)
    if ctx.json:
        ctx.emit_json(desc)
    else:
        ctx.out.write(render_text(desc))
    return 0


# -- description (one dict shared by the JSON and text writers) --------------


def _type_name(btf: BTF | None, type_id: int) -> str | None:
    if btf is None or not type_id:
        return None
    try:
        return btf.type_name(type_id)
    except Exception:  # noqa: BLE001 - a damaged type name must not hide the rest
        return None


def _value(btf: BTF | None, var: VarSpec) -> Any:
    if btf is not None and var.type_id:
        from pybpfobj.errors import BpfError
        from pybpfobj.spec.btf_format import format_value

        try:
            return format_value(btf, var.type_id, var.initial, merge_anonymous=True)
        except BpfError:
            pass
    return hexbytes(var.initial)


def _program(p: ProgramSpec) -> dict[str, Any]:
    d = {"name": p.name, "section": p.section, "type": p.prog_type,
         "expected_attach_type": p.expected_attach_type, "insns": p.insn_count,
         "license": p.license}
    if not p.autoload:
        d["autoload"] = False     # SEC("?..."): libbpf will not load it unless asked
    return d


def _map(btf: BTF | None, m: MapSpec, idx: int | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if idx is not None:
        d["idx"] = idx
    d.update({
        "name": m.name, "type": m.type_name, "key_size": m.key_size,
        "key_type": _type_name(btf, m.key_type_id), "value_size": m.value_size,
        "value_type": _type_name(btf, m.value_type_id), "max_entries": m.max_entries,
        "flags": m.flags, "pinning": _PIN_NAMES.get(m.pinning, str(m.pinning)),
    })
    if m.map_extra:
        d["map_extra"] = m.map_extra
    if m.numa_node:
        d["numa_node"] = m.numa_node
    if m.section is not None:
        d["section"] = m.section
    if m.inner is not None:
        d["inner"] = _map(btf, m.inner, None)
    if m.init_values:
        d["init_values"] = {str(k): v for k, v in sorted(m.init_values.items())}
    if m.internal:
        d["variables"] = [{
            "name": v.name, "type": _type_name(btf, v.type_id), "offset": v.offset,
            "size": v.size, "value": _value(btf, v),
        } for v in m.variables]
    return d


def describe(spec: ObjectSpec) -> dict[str, Any]:
    """The JSON document ``inspect -j`` prints for ``spec``."""
    btf = spec.btf
    return {
        "name": spec.name, "file": spec.path, "license": spec.license,
        "kern_version": spec.kern_version, "btf": btf is not None,
        "programs": [_program(p) for p in spec.programs],
        "maps": [_map(btf, m, i) for i, m in enumerate(spec.maps)],
    }


# -- text -----------------------------------------------------------------------


def _sized(size: int, tname: str | None) -> str:
    return f"{size}B ({tname})" if tname else f"{size}B"


def _map_lines(m: dict[str, Any], indent: str) -> list[str]:
    head = f"{indent}map idx {m['idx']}  " if "idx" in m else f"{indent}"
    out = [f"{head}name {m['name']}  type {m['type']}"
           + (f"  section {m['section']}" if "section" in m else "")]
    attrs = [f"key {_sized(m['key_size'], m['key_type'])}",
             f"value {_sized(m['value_size'], m['value_type'])}",
             f"max_entries {m['max_entries']}", f"flags 0x{m['flags']:x}"]
    if m["pinning"] != "none":
        attrs.append(f"pinning {m['pinning']}")
    if "map_extra" in m:
        attrs.append(f"map_extra {m['map_extra']}")
    if "numa_node" in m:
        attrs.append(f"numa_node {m['numa_node']}")
    out.append(f"{indent}\t" + "  ".join(attrs))
    if "inner" in m:
        inner = _map_lines(m["inner"], "")
        out.append(f"{indent}\tinner: {inner[0]}")
        out.append(f"{indent}\t{inner[1]}")
    if "init_values" in m:
        slots = ", ".join(f"[{k}] = {v}" for k, v in m["init_values"].items())
        out.append(f"{indent}\tinitial values: {slots}")
    for v in m.get("variables", []):
        tname = f" ({v['type']})" if v["type"] else ""
        value = json.dumps(v["value"], separators=(", ", ": "))
        out.append(f"{indent}\t{v['name']}{tname} @{v['offset']} = {value}")
    return out


def render_text(desc: dict[str, Any]) -> str:
    """The plain-text form of :func:`describe`'s document."""
    lines = [f"object {desc['name']}  file {desc['file']}",
             (f"\tlicense \"{desc['license']}\"  kern_version {desc['kern_version']}  "
              f"btf {'yes' if desc['btf'] else 'no'}"),
             f"programs: {len(desc['programs'])}"]
    for p in desc["programs"]:
        attach = f"  attach_type {p['expected_attach_type']}" if p["expected_attach_type"] else ""
        lines.append(f"  {p['name']}  section {p['section']}  type {p['type'] or 'unknown'}"
                     f"{attach}  insns {p['insns']}" + ("  autoload off" if p.get("autoload") is False else ""))
    lines.append(f"maps: {len(desc['maps'])}")
    for m in desc["maps"]:
        lines.extend(_map_lines(m, "  "))
    return "\n".join(lines) + "\n"
