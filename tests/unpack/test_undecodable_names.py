"""File names that are not UTF-8 (Linux names are bytes): in a layer they are unpacked byte
for byte, and wherever lamina prints one (a note, an error, a path argument) it is escaped as
``\\xNN``, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult
from tests.unpack.oci import Entry, f, gz, single, tar_bytes

Lamina = Callable[..., CliResult]
LATIN1 = b"caf\xe9"  # "café" in Latin-1: not UTF-8
NAME = LATIN1.decode("utf-8", "surrogateescape")  # how Python carries it


def test_a_layer_name_that_is_not_utf8_is_unpacked_byte_for_byte(
        lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([f(NAME, "latin"), Entry(f"{NAME}-suid", "file", b"x", 0o4755)]))
    single(tmp_path / "layout", [layer])
    out = tmp_path / "out"
    first = lamina("unpack", f"oci:{tmp_path / 'layout'}:test", str(out), "--json")
    assert first.code == 0, first.err
    notes = json.loads(first.out)["flats"][0]["summary"]["notes"]
    assert notes["setid_files"] == [f"{NAME}-suid"]  # JSON carries it as \udce9
    human = lamina("unpack", f"oci:{tmp_path / 'layout'}:test", str(out / "again"))
    assert human.code == 0, human.err
    assert "Traceback" not in human.err
    assert "note (amd64): 1 setuid/setgid files (no effect on CVMFS unless CVMFS_SUID=yes): " \
           "caf\\xe9-suid" in human.out
    flat = os.fsencode(out / "again/localhost/test:latest")
    assert LATIN1 in os.listdir(flat)
    with open(os.path.join(flat, LATIN1), "rb") as handle:
        assert handle.read() == b"latin"

    again = lamina("unpack", f"oci:{tmp_path / 'layout'}:test", str(out), "--json")
    assert again.code == 0, again.err
    notes = json.loads(again.out)["flats"][0]["summary"]["notes"]
    assert notes["setid_files"] == [f"{NAME}-suid"]  # JSON carries it as \\udce9


def test_a_refused_entry_that_is_not_utf8_is_one_line(lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([f(f"../{NAME}", "x")]))
    single(tmp_path / "layout", [layer])
    result = lamina("unpack", f"oci:{tmp_path / 'layout'}:test", str(tmp_path / "out"))
    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "entry '../caf\\udce9' has a '..' component" in result.err


def test_a_path_argument_that_is_not_utf8_is_printed_escaped(lamina: Lamina,
                                                              tmp_path: Path) -> None:
    odd = tmp_path / NAME
    odd.mkdir()
    result = lamina("unpack", f"oci:{odd}", str(tmp_path / "out"))
    assert result.code == 2
    assert result.err == (f"lamina: error: {tmp_path}/caf\\xe9/index.json not found (not an OCI "
                          "image layout?)\n")
