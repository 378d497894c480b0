"""VerifierError read from the log itself: the failing instruction and its source line
in subprograms, global functions and later programs (instructions are numbered over the
loaded program, subprograms appended), the reason at every log level (not precision
tracking or state lines), checks made after the walk, the program libbpf names (not a
name in source text), a log that overflows its buffer, pickling."""

from __future__ import annotations

import copy
import errno
import pickle
from pathlib import Path

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import VerifierError
from pybpfobj.loader import BpfObject

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("need_root")]

_COMMON = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); }
    hm SEC(".maps");
char LICENSE[] SEC("license") = "GPL";
"""

SOURCES = {
    # a static subprogram the compiler keeps apart: its instructions follow the main body
    "noinline": """
static __noinline int helper(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&hm, &k);
	*v += 1; /* FAIL */
	return 1;
}
SEC("xdp")
int p_main(struct xdp_md *ctx)
{
	__u32 key = ctx->rx_queue_index;
	int r = 0;
	if (key > 3)
		r = 2;
	return r + helper(key);
}
""",
    # a global function (verified on its own) called from the second program of the object
    "global_second": """
__noinline int gok(__u32 k)
{
	return k * 2;
}
__noinline int gbad(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&hm, &k);
	return *v; /* FAIL */
}
SEC("xdp")
int p_a(struct xdp_md *ctx)
{
	return gok(ctx->rx_queue_index);
}
SEC("tc")
int p_b(struct __sk_buff *skb)
{
	return gok(skb->len) + gbad(skb->mark);
}
""",
    # source text that looks like libbpf's line naming another program
    "hijack": """
SEC("xdp")
int p_real(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&hm, &key);
	*v += 1; /* FAIL see prog 'hm': failed to load */
	return XDP_PASS;
}
""",
    "retval": """
SEC("cgroup_skb/ingress")
int p_ret(struct __sk_buff *skb)
{
	return skb->len; /* FAIL: must be 0 or 1 */
}
""",
    # checked after the walk: no instruction of its own
    "combined_stack": """
static __noinline int deep(__u32 k)
{
	volatile char buf[400];
	buf[k & 255] = 1;
	return buf[3];
}
SEC("xdp")
int p_comb(struct xdp_md *ctx)
{
	volatile char buf[400];
	buf[ctx->rx_queue_index & 255] = 2;
	return deep(ctx->rx_queue_index) + buf[5];
}
""",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("verr")
    return {name: build_bpf(d, name, _COMMON + src) for name, src in SOURCES.items()}


def _fail_line(name: str) -> int:
    lines = (_COMMON + SOURCES[name]).split("\n")
    return next(i + 1 for i, line in enumerate(lines) if "FAIL" in line)


def _reject(path: Path | bytes, **kw: int) -> VerifierError:
    with BpfObject(path, **kw) as obj, pytest.raises(VerifierError) as info:  # type: ignore[arg-type]
        obj.load()
    return info.value


@pytest.mark.parametrize("log_level", [0, 1, 2])
@pytest.mark.parametrize(("name", "prog"), [("noinline", "p_main"), ("global_second", "p_b"),
                                            ("hijack", "p_real"), ("retval", "p_ret")])
def test_the_failing_line_is_the_one_the_kernel_annotates(built: dict[str, Path], name: str, prog: str,
                                                          log_level: int) -> None:
    e = _reject(built[name], log_level=log_level)
    assert e.prog == prog and e.insn is not None and e.source is not None
    assert e.source[0] == f"{name}.bpf.c" and e.source[1] == _fail_line(name) and "FAIL" in e.source[2]
    reason = str(e).rsplit("): ", 1)[1]
    want = "At program exit the register R0" if name == "retval" else "invalid mem access 'map_value_or_null'"
    assert want in reason and "mark_precise" not in reason
    assert f"at insn {e.insn} ({name}.bpf.c:{_fail_line(name)}: " in str(e)


def test_a_check_after_the_walk_names_no_instruction(built: dict[str, Path]) -> None:
    for level in (0, 2):
        e = _reject(built["combined_stack"], log_level=level)
        assert e.insn is None and e.source is None
        assert str(e) == ("failed to load object file: the verifier rejected program 'p_comb': combined stack "
                          "size of 2 calls is 800. Too large")


def test_an_object_from_bytes_reports_the_same_source(built: dict[str, Path]) -> None:
    a, b = _reject(built["noinline"]), _reject(built["noinline"].read_bytes())
    assert (a.insn, a.source) == (b.insn, b.source)


def test_the_cli_names_the_program_libbpf_names(built: dict[str, Path], bpffs: Path) -> None:
    from clirun import ours

    rc, _out, err = ours("prog", "load", str(built["hijack"]), str(bpffs / "x"))
    assert rc == 255
    assert err.splitlines()[-1].startswith("Error: failed to load object file: the verifier rejected program "
                                           "'p_real' at insn ")


def test_verifier_errors_survive_pickling_and_copying(built: dict[str, Path]) -> None:
    e = _reject(built["noinline"])
    for other in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
        assert type(other) is VerifierError and str(other) == str(e) and other.errno == e.errno
        assert (other.log, other.insn, other.source, other.prog, other.obj) == (e.log, e.insn, e.source,
                                                                                e.prog, e.obj)


def test_a_log_that_overflows_its_buffer_keeps_the_real_error(tmp_path: Path) -> None:
    # a million instructions of loop: the log (16 MiB buffer) overflows, the kernel answers
    # ENOSPC, which hides the E2BIG the log's end states
    src = _COMMON + """
SEC("xdp")
int p_loop(struct xdp_md *ctx)
{
	volatile int i = 0;
	int s = 0;
	while (i >= 0) {
		s += i;
		i++;
	}
	return s;
}
"""
    e = _reject(build_bpf(tmp_path, "loop", src))
    assert e.errno == errno.E2BIG and "BPF program is too large" in str(e)
    assert str(e).endswith("(the verifier log overflowed its buffer: .log holds its end)")


def test_a_failed_core_relocation_names_its_instruction(tmp_path: Path) -> None:
    # the log marks the instruction "1: <invalid CO-RE relocation>", not "1: (...)"
    src = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
struct task_struct___bad { int no_such_field_zz; } __attribute__((preserve_access_index));
int res;
SEC("raw_tp/sched_switch") int rtp(void *ctx)
{
	struct task_struct___bad *t = (void *)bpf_get_current_task();
	res = BPF_CORE_READ(t, no_such_field_zz);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""
    e = _reject(build_bpf(tmp_path, "core", src))
    assert e.insn == 1 and "failed to resolve CO-RE relocation" in str(e)
