"""``lamina diff`` with manifest files that are not JSON or not manifests: one line, exit 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult

Lamina = Callable[..., CliResult]

GOOD = {"image": "app", "key": "sha256:" + "a" * 64, "platform": "linux/amd64", "size": 10,
        "packages": {"pip": {"numpy": "2.1.0"}, "deb": {"bash": "5.2"}}}


def one_line(result: CliResult) -> str:
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0]


def test_two_manifest_files_give_release_notes(lamina: Lamina, tree: Callable[[str], Path],
                                               tmp_path: Path) -> None:
    project = tree("tiny")
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(GOOD))
    new.write_text(json.dumps({**GOOD, "key": "sha256:" + "b" * 64, "size": 12,
                               "packages": {"pip": {"numpy": "2.1.1"}, "deb": {}}}))
    result = lamina("-C", str(project), "diff", str(old), str(new))
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "app aaaaaaaaaaaa -> app bbbbbbbbbbbb (linux/amd64)",
        "~ pip numpy 2.1.0 -> 2.1.1", "- deb bash 5.2", "size 10 -> 12 bytes (+2)"]


@pytest.mark.parametrize(("content", "message"), [
    (b"", "{f}:1:1: not valid JSON: Expecting value"),
    (b"not json at all", "{f}:1:1: not valid JSON: Expecting value"),
    (b'{"image": "app",\n "key": ', "{f}:2:9: not valid JSON: Expecting value"),
    (b"\xff\xfe{}", "{f}: not UTF-8 (byte 0 is not valid UTF-8)"),
    (b"[" * 100000 + b"]" * 100000, "{f}: not usable JSON: nested too deeply"),
    (b"[]", "{f}: (top level): expected an object, got a list"),
    (json.dumps({**GOOD, "key": None}).encode(), "{f}: key: expected a string, got null"),
    (json.dumps({**GOOD, "packages": []}).encode(),
     "{f}: packages: expected an object, got a list"),
    (json.dumps({**GOOD, "packages": {"pip": "numpy"}}).encode(),
     "{f}: packages.pip: expected an object, got a string"),
    (json.dumps({**GOOD, "packages": {"deb": {"bash": 5}}}).encode(),
     "{f}: packages.deb.bash: expected a string, got a number"),
    (json.dumps({**GOOD, "size": "big"}).encode(), "{f}: size: expected an integer, got a string"),
])
def test_a_file_that_is_not_a_manifest_is_one_line(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path, content: bytes,
        message: str) -> None:
    project = tree("tiny")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(GOOD))
    bad.write_bytes(content)
    for order in ((good, bad), (bad, good)):
        result = lamina("-C", str(project), "diff", str(order[0]), str(order[1]))
        assert result.code == 2
        assert one_line(result) == "lamina: error: " + message.format(f=bad)
        assert result.out == ""


def test_a_non_utf8_manifest_path_is_printed_escaped(lamina: Lamina, tree: Callable[[str], Path],
                                                     tmp_path: Path) -> None:
    project = tree("tiny")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    name = b"bad-\xff.json"
    (tmp_path / name.decode(errors="surrogateescape")).write_bytes(b"{")
    result = lamina("-C", str(project), "diff", str(good),
                    str(tmp_path / name.decode(errors="surrogateescape")))
    assert result.code == 2
    assert one_line(result) == (f"lamina: error: {tmp_path}/bad-\\xff.json:1:2: not valid JSON: "
                                "Expecting property name enclosed in double quotes")
