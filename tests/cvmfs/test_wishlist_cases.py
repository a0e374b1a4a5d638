"""The wishlist editor on realistic files, one directory per case under
tests/cases/wishlist/<case>/ (recipe.yaml + case.yaml saying what must happen).

case.yaml keys: ``add`` (the URLs requested), then either ``error`` (a substring of the one-line
refusal) or ``expect_lines`` + ``after`` (the inserted lines, byte for byte, and the line they
follow), optionally ``skipped`` (url: reason substring), ``broken`` (line number: substring of
DUCC's verdict on an existing line; without the key no line may be reported) and ``notes``
(substrings). The expected values are written from DUCC's source, cited in each case.yaml."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from lamina.cvmfs import WishlistError
from lamina.cvmfs.wishlist import add_entries
from tests.cvmfs.conftest import CASES

CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "case.yaml").is_file())


def _case(path: Path) -> tuple[str, dict[str, Any]]:
    text = (path / "recipe.yaml").read_bytes().decode("utf-8")
    spec = YAML(typ="safe").load((path / "case.yaml").read_text())
    return text, spec


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
def test_wishlist_case(case: Path) -> None:
    text, spec = _case(case)
    if "error" in spec:
        with pytest.raises(WishlistError) as info:
            add_entries(text, spec["add"], "recipe.yaml")
        assert spec["error"] in str(info.value) and "\n" not in str(info.value)
        return
    edit = add_entries(text, spec["add"], "recipe.yaml")
    old_lines, new_lines = text.splitlines(), edit.text.splitlines()
    # the diff only adds lines, and exactly the expected ones, byte for byte
    diff = [d for d in difflib.ndiff(old_lines, new_lines) if d[:2] in ("- ", "+ ")]
    assert all(d.startswith("+ ") for d in diff), diff
    assert [d[2:] for d in diff] == spec["expect_lines"]
    # right after the last existing entry (or the key of an empty list)
    at = new_lines.index(spec["expect_lines"][0])
    assert new_lines[at - 1] == spec["after"]
    # same line endings and the same ending of the file
    eol = "\r\n" if "\r\n" in text else "\n"
    for line in spec["expect_lines"]:
        assert (line + eol) in edit.text or edit.text.endswith(line)
    assert edit.text.endswith("\n") == text.endswith("\n")
    if eol == "\r\n":
        assert edit.text.count("\n") == edit.text.count("\r\n")
    for url, why in (spec.get("skipped") or {}).items():
        reasons = [w for u, w in edit.skipped if u == url]
        assert reasons and any(why in r for r in reasons), (url, edit.skipped)
    assert set(edit.added) | {u for u, _ in edit.skipped} == set(spec["add"])
    broken = {b.line: b.report() for b in edit.broken}
    assert set(broken) == set(spec.get("broken") or {}), broken
    for line, why in (spec.get("broken") or {}).items():
        assert why in broken[line] and "\n" not in broken[line], (line, broken[line])
    assert len(edit.notes) == len(spec.get("notes") or []), edit.notes
    for note, expected in zip(edit.notes, spec.get("notes") or [], strict=True):
        assert expected in note, (expected, note)
    # idempotent: adding the same entries again changes nothing
    again = add_entries(edit.text, spec["add"], "recipe.yaml")
    assert again.text == edit.text and not again.added
