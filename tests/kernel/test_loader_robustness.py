"""What a failing or interrupted call leaves: a mount that another command's pins now use
stays, pins are undone by what they are (not by a name resolved from another working
directory), a KeyboardInterrupt as libbpf returns (load, pin, close) leaves no pin and
frees nothing twice, two threads closing one object, the CLI's exit code when
interrupted, and calls libbpf would crash on are refused."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from loader_testutil import build_bpf

from pybpfobj.errors import BpfError, PinError, ProgramError
from pybpfobj.kernel import bpffs as kbpffs
from pybpfobj.loader import BpfObject

pytestmark = [pytest.mark.kernel, pytest.mark.usefixtures("need_root")]


def _mounted(path: Path) -> bool:
    with open("/proc/mounts") as f:
        return any(line.split()[1] == str(path) and line.split()[2] == "bpf" for line in f)


def test_a_mount_whose_bpffs_another_command_uses_is_left(objs: Path) -> None:
    plain = Path(tempfile.mkdtemp(prefix="pybpfobj-plain-"))
    m = kbpffs.mount_bpffs(str(plain))
    try:
        with BpfObject(objs / "xdp_counter.o") as other:  # another command pins into our mount
            other.load()
            other.pin_first(str(plain / "theirs"))
            m.undo()  # this command failed: its own pins are gone, the mount is not only its
            assert _mounted(plain) and (plain / "theirs").exists()
            other.unpin_all()
        m.undo()  # empty now: undone
        assert not _mounted(plain)
    finally:
        m.undo(force=True)
        os.rmdir(plain)


def test_unpin_all_removes_its_own_pins_from_any_working_directory(objs: Path, bpffs: Path,
                                                                    tmp_path: Path) -> None:
    here = os.getcwd()
    decoy = tmp_path / "decoy"
    (decoy / "d").mkdir(parents=True)
    (decoy / "p").write_text("not a pin")
    (decoy / "d" / "xdp_count").write_text("not a pin")
    try:
        os.chdir(bpffs)
        with BpfObject(objs / "xdp_counter.o") as obj:
            obj.load()
            obj.pin_programs("d")  # relative to the bpffs
            obj.pin_first("p")
            os.chdir(decoy)
            obj.unpin_all()
    finally:
        os.chdir(here)
    assert (decoy / "p").read_text() == "not a pin" and (decoy / "d" / "xdp_count").exists()
    assert not (bpffs / "p").exists() and not (bpffs / "d").exists()


def test_unpin_all_leaves_what_took_the_name_meanwhile(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as obj, BpfObject(objs / "xdp_counter.o") as other:
        obj.load()
        other.load()
        obj.pin_first(str(bpffs / "p"))
        os.unlink(bpffs / "p")
        other.pin_first(str(bpffs / "p"))  # someone else's pin at our old name
        obj.unpin_all()
        assert (bpffs / "p").exists()
        other.unpin_all()


def test_a_nul_byte_in_a_pin_directory_is_a_pybpfobj_error(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
        for call in (obj.pin_programs, obj.pin_maps):
            with pytest.raises(BpfError, match="NUL byte"):
                call(f"{bpffs}/a\0b")
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """``module.name`` runs, then a KeyboardInterrupt comes as it returns (Ctrl-C's timing)."""
    real = getattr(module, name)

    def call(*a: Any, **k: Any) -> Any:
        real(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, call)


def test_an_interrupt_as_the_load_returns_leaves_no_by_name_pin(objs: Path, bpffs: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    _interrupt_after(monkeypatch, loader._o, "load_object")
    root = bpffs / "root"  # made by libbpf for the by-name pin: taken back too
    obj = BpfObject(objs / "pinbyname.o", pin_root=str(root))
    with pytest.raises(KeyboardInterrupt):
        obj.load()
    assert obj.state == "closed" and not root.exists()


def test_an_interrupt_as_a_pin_is_made_leaves_no_pin(objs: Path, bpffs: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with BpfObject(objs / "progs_all.o") as obj:
        obj.load()
        _interrupt_after(monkeypatch, kbpffs, "pin_fd")
        with pytest.raises(KeyboardInterrupt):
            obj.pin_programs(str(bpffs / "d"))
        monkeypatch.undo()
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def test_an_interrupt_as_libbpf_closes_the_object_frees_nothing_twice(
        objs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pybpfobj import loader

    obj = BpfObject(objs / "xdp_counter.o")
    obj.load()
    _interrupt_after(monkeypatch, loader._o, "close_object")
    with pytest.raises(KeyboardInterrupt):
        obj.close()
    monkeypatch.undo()
    assert obj.state == "closed"
    obj.close()  # nothing left to free (libbpf's object was freed once)
    del obj


_TWO_CLOSERS = """
import sys, threading
from pybpfobj.loader import BpfObject
for _ in range(200):
    o = BpfObject(sys.argv[1]); o.load()
    ts = [threading.Thread(target=o.close) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
print("ok")
"""


def test_two_threads_closing_one_object_free_it_once(objs: Path) -> None:
    p = subprocess.run([sys.executable, "-c", _TWO_CLOSERS, str(objs / "xdp_counter.o")],
                       capture_output=True, text=True, timeout=120, check=False)
    assert (p.returncode, p.stdout.strip()) == (0, "ok"), p.stderr[-2000:]


@pytest.mark.parametrize(("call", "refusal"), [("close", "object 'heavy' is being loaded on another thread"),
                                              ("load", "object 'heavy' is loading; configure it before load")])
def test_close_or_a_second_load_while_another_thread_loads_is_refused(objs: Path, call: str,
                                                                      refusal: str) -> None:
    import time

    obj = BpfObject(objs / "heavy.o")  # 170 ms of verifier
    t = threading.Thread(target=obj.load)
    t.start()
    time.sleep(0.05)
    with pytest.raises(BpfError, match=refusal) as info:
        getattr(obj, call)()
    assert info.value.errno == errno.EBUSY
    t.join()
    assert obj.state == "loaded"
    obj.close()


def test_the_cli_interrupted_exits_130_and_leaves_nothing(objs: Path, bpffs: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from clirun import ours

    from pybpfobj import loader

    _interrupt_after(monkeypatch, loader.BpfObject, "pin_maps")
    rc, _out, _err = ours("prog", "loadall", str(objs / "tailcall.o"), str(bpffs / "p"), "pinmaps",
                          str(bpffs / "m"))
    assert rc == 130
    assert sorted(os.listdir(bpffs)) == ["maps.debug", "progs.debug"]


def test_a_struct_ops_program_keeps_its_type(tmp_path: Path) -> None:
    # libbpf 1.1 (and bpftool 7.1) crash loading a struct_ops program as another type
    src = (Path(__file__).resolve().parent.parent / "data" / "foreign" / "struct_ops.bpf.c").read_text()
    with BpfObject(build_bpf(tmp_path, "sops", src)) as obj, \
            pytest.raises(ProgramError, match="is a struct_ops program: its type cannot change"):
        obj.set_prog_type("xdp")


def test_fds_of_programs_and_maps_left_out_are_errors_not_negative(tmp_path: Path) -> None:
    src = (Path(__file__).resolve().parent.parent / "data" / "foreign" / "autoload_off.bpf.c").read_text()
    with BpfObject(build_bpf(tmp_path, "ao", src)) as obj:
        obj.load()
        with pytest.raises(ProgramError, match="program 'lazy_xdp' of object 'ao' was not loaded") as info:
            obj.prog_fd("lazy_xdp")
        assert info.value.errno == errno.ENOENT
        assert obj.prog_fd("eager_sock") >= 0


def test_open_failures_are_object_errors_and_libbpf_errors(tmp_path: Path) -> None:
    from pybpfobj.errors import LibbpfError, LibbpfOpenError, ObjectFormatError, ObjectOpenError

    junk = tmp_path / "junk.o"
    junk.write_bytes(b"not an ELF file at all" * 4)
    for path in (junk, tmp_path / "missing.o"):
        with pytest.raises(LibbpfOpenError) as info:
            BpfObject(path)
        e = info.value
        assert isinstance(e, ObjectOpenError) and isinstance(e, ObjectFormatError) and isinstance(e, LibbpfError)
        assert ": libbpf: " not in str(e) and e.exit_code == 255


def test_a_verifier_rejection_exits_as_bpftool(objs: Path) -> None:
    from pybpfobj.errors import VerifierError

    with BpfObject(objs / "bad_verifier.o") as obj, pytest.raises(VerifierError) as info:
        obj.load()
    assert info.value.exit_code == 255


def test_pinning_off_bpffs_says_so(objs: Path, tmp_path: Path) -> None:
    from pybpfobj.errors import BpffsError

    with BpfObject(objs / "xdp_counter.o") as obj:
        obj.load()
        for call in (obj.pin_programs, obj.pin_maps):
            with pytest.raises(BpffsError, match="is not on a BPF file system"):
                call(str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()


def test_pin_root_may_be_a_path_object(objs: Path, bpffs: Path) -> None:
    with BpfObject(objs / "pinbyname.o", pin_root=bpffs) as obj:  # type: ignore[arg-type]
        obj.load()
        assert obj.pinned_by_name == {"pinned_hash": f"{bpffs}/pinned_hash"}
        obj.unpin_all()


def test_a_library_that_is_not_libbpf_is_refused_clearly() -> None:
    env = {**os.environ, "PYBPFOBJ_LIBBPF": "libc.so.6"}
    p = subprocess.run([sys.executable, "-m", "pybpfobj", "prog", "show"], env=env, capture_output=True,
                       text=True, check=False)
    assert p.returncode == 255 and "Traceback" not in p.stderr
    assert p.stderr.startswith("Error: libc.so.6 is not libbpf (it has no libbpf_set_print)")


_USES_COPY = """
import sys
from pybpfobj.loader import BpfObject
with BpfObject(sys.argv[1]) as o:
    o.load()
    print(sorted(o.programs))
maps = open("/proc/self/maps").read()
print(sys.argv[2] in maps, "/libbpf.so.1" in maps.replace(sys.argv[2], ""))
"""


def test_the_environment_may_name_another_libbpf_which_is_the_one_used(objs: Path, tmp_path: Path) -> None:
    from pybpfobj.kernel import libbpf

    libbpf.lib()  # the system's copy, as the dynamic loader finds it
    system = next(line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
                  if line.endswith("/libbpf.so.1") or "/libbpf.so.1." in line)
    copy = tmp_path / "libbpf-copy.so"
    copy.write_bytes(Path(system).read_bytes())
    env = {**os.environ, "PYBPFOBJ_LIBBPF": str(copy)}
    p = subprocess.run([sys.executable, "-c", _USES_COPY, str(objs / "xdp_counter.o"), str(copy)], env=env,
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == ["['xdp_count']", "True False"]  # the copy, not the system's


_SLEEPABLE = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("uprobe.multi.s")
int p_sleepy(void *ctx)
{
	char buf[8];
	bpf_copy_from_user(buf, sizeof(buf), (void *)0x1000);  /* may sleep */
	return 0;
}
"""


def test_a_sleepable_section_libbpf_11_cannot_place_loads_sleepable(tmp_path: Path) -> None:
    with BpfObject(build_bpf(tmp_path, "sleepy", _SLEEPABLE)) as obj:
        obj.load()  # without BPF_F_SLEEPABLE the verifier refuses the helper
        assert obj.programs["p_sleepy"].type == "kprobe"


_OPTIONAL_UNKNOWN = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("?nosuchsection/x") int left_out(void *ctx) { return 0; }
SEC("xdp") int kept(struct xdp_md *ctx) { return XDP_PASS; }
"""


def test_a_left_out_program_in_a_section_nobody_knows_does_not_stop_the_load(tmp_path: Path) -> None:
    with BpfObject(build_bpf(tmp_path, "opt", _OPTIONAL_UNKNOWN)) as obj:
        obj.load()  # as libbpf: a program whose autoload is off needs no type
        assert list(obj.programs) == ["kept"]


_UNIX = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("cgroup/connect_unix") int p_unix(struct bpf_sock_addr *ctx) { return 1; }
"""


def test_an_attach_type_the_kernel_lacks_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as an older kernel answers for cgroup/*_unix: the type exists, the attach type does not
    # (simulated with an attach type no kernel has)
    from pybpfobj import loader
    from pybpfobj.spec.sections import SectionDef

    monkeypatch.setattr(loader, "_section_def",
                        lambda sec: SectionDef(sec, "cgroup_sock_addr", 200))  # type: ignore[arg-type]
    with BpfObject(build_bpf(tmp_path, "unix", _UNIX)) as obj, pytest.raises(ProgramError) as info:
        obj.load()
    msg = str(info.value)
    assert "program 'p_unix': the kernel refused it as type cgroup_sock_addr with expected attach type" in msg
    assert "(section 'cgroup/connect_unix')" in msg and "may lack the attach type" in msg


def test_a_failure_before_the_programs_says_why(tmp_path: Path) -> None:
    # libbpf's closing "failed to load object" line only repeats that it failed
    from pybpfobj.errors import LibbpfError

    src = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
extern int CONFIG_NO_SUCH_OPTION_X __kconfig;
int out;
SEC("xdp") int xp(struct xdp_md *c) { out = CONFIG_NO_SUCH_OPTION_X; return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""
    with BpfObject(build_bpf(tmp_path, "kc", src)) as obj, pytest.raises(LibbpfError) as info:
        obj.load()
    msg = str(info.value)
    assert "CONFIG_NO_SUCH_OPTION_X" in msg and ": libbpf: " not in msg and not msg.endswith("'kc.o'")


_CUSTOM = """
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
int v1 SEC(".data.custom_long_name_1") = 1;
const volatile int r1 SEC(".rodata.custom_long_name_1") = 3;
int b1 SEC(".bss.custom");
SEC("xdp") int xp(struct xdp_md *c) { b1 = v1 + r1; return XDP_PASS; }
char LICENSE[] SEC("license") = "GPL";
"""


def test_custom_sections_of_any_length_and_bss_ones_are_named_as_libbpf(tmp_path: Path) -> None:
    from pybpfobj.spec.elf import ObjectSpec

    path = build_bpf(tmp_path, "custom", _CUSTOM)
    spec = ObjectSpec.from_file(str(path))
    with BpfObject(path) as obj:
        assert [m.name for m in spec.maps] == obj.map_names()
        assert ".data.custom_long_name_1" in obj.map_names() and ".bss.custom" in obj.map_names()
        obj.set_var("v1", 7)
        obj.set_var("r1", 9)
        obj.load()
        assert obj.get_var("v1") == (7).to_bytes(4, "little")


def test_no_bpffs_is_mounted_over_the_root_directory(objs: Path) -> None:
    from clirun import ours

    def bpf_on_root() -> int:
        with open("/proc/self/mountinfo") as f:
            return sum(1 for line in f if line.split()[4] == "/" and " - bpf " in line)

    before = bpf_on_root()
    rc, _out, err = ours("prog", "loadall", str(objs / "xdp_counter.o"), "/pybpfobj-no-such-dir")
    assert rc == 255 and "none can be mounted on the root directory" in err
    assert bpf_on_root() == before and not os.path.exists("/pybpfobj-no-such-dir")


def test_a_failed_load_goes_straight_to_closed(objs: Path) -> None:
    from pybpfobj.errors import VerifierError

    bad = BpfObject(objs / "bad_verifier.o")
    with pytest.raises(VerifierError):
        bad.load()
    assert bad.state == "closed"
    with pytest.raises(BpfError, match="is closed"):
        bad.load()


def test_a_relative_pin_root_still_to_be_made_is_judged_by_the_working_directory(
        objs: Path, bpffs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bpffs)
    with BpfObject(objs / "pinbyname.o", pin_root="newroot") as obj:  # made by libbpf, in the cwd
        obj.load()
        assert (bpffs / "newroot" / "pinned_hash").exists()
        obj.unpin_all()
    assert not (bpffs / "newroot").exists()
    with BpfObject(objs / "pinbyname.o", pin_root="a/b") as obj, \
            pytest.raises(PinError, match="under 'a/b', whose parent 'a' does not exist"):
        obj.load()
