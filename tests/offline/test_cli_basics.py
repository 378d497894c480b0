"""The CLI's global option handling and error reporting (no kernel needed)."""

from __future__ import annotations

import io
import json

from pybpfobj.cli.common import Context, match_keyword
from pybpfobj.cli.main import parse_options, run


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run(list(argv), Context(out=out, err=err))
    return rc, out.getvalue(), err.getvalue()


def test_options_anywhere_and_clusters() -> None:
    opts, words = parse_options(["map", "-jp", "dump", "--debug", "id", "3"])
    assert opts == {"j", "p", "d"}
    assert words == ["map", "dump", "id", "3"]


def test_negative_number_stays_a_word() -> None:
    opts, words = parse_options(["key", "-1"])
    assert words == ["key", "-1"] and not opts


def test_unknown_option_is_an_error_with_usage() -> None:
    rc, out, err = _run("-x", "prog")
    assert rc == 255 and "Error: unrecognized option '-x'" in err and "Usage:" in err and out == ""


def test_option_error_after_json_is_reported_in_json_like_bpftool() -> None:
    rc, out, err = _run("-j", "-x", "prog")
    assert rc == 255 and json.loads(out) == {"error": "unrecognized option '-x'"} and err == ""


def test_prefix_matching_takes_first_in_table_order() -> None:
    assert match_keyword("l", ["show", "list", "load"]) == "list"
    assert match_keyword("loada", ["load", "loadall"]) == "loadall"
    assert match_keyword("x", ["show"]) is None


def test_unknown_object_word() -> None:
    rc, _out, err = _run("frobnicate")
    assert rc == 255 and err.startswith("Error: object 'frobnicate' is unknown")


def test_json_error_goes_to_stdout() -> None:
    rc, out, _err = _run("-j", "frobnicate")
    assert rc == 255 and json.loads(out) == {"error": "object 'frobnicate' is unknown"}


def test_version() -> None:
    rc, out, _err = _run("version")
    assert rc == 0 and out.startswith("pybpfobj v")


def test_gen_output_option_passes_through_with_its_value() -> None:
    opts, words = parse_options(["gen", "-j", "skeleton", "x.o", "-o", "out.py", "--no-embed"])
    assert opts == {"j"}
    assert words == ["gen", "skeleton", "x.o", "-o", "out.py", "path"]


def test_output_option_without_value_is_a_usage_error() -> None:
    rc, _out, err = _run("gen", "skeleton", "x.o", "-o")
    assert rc == 255 and "Error: option '-o' requires an argument" in err


def test_a_value_on_a_global_option_is_refused() -> None:
    rc, out, err = _run("--json=1", "version")
    assert rc == 255 and "Error: unrecognized option '--json=1'" in err and out == ""


def test_numbers_are_read_as_strtoul_reads_them_but_never_wrap() -> None:
    from pybpfobj.cli.common import parse_ulong

    assert [parse_ulong(s) for s in ("10", "0x1f", "0X1F", "010", "0", " +7")] == [10, 31, 31, 8, 0, 7]
    for bad in ("", "-1", "0b1", "1_0", "08", "0x", "1a", "x", "4294967296", "١"):
        try:
            parse_ulong(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
