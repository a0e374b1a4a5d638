"""Every malformed recipe gives one line naming file, line and key, and exit code 2.

Each directory under ``tests/cases/recipe_errors`` is a tree with one mistake and an
``expected.txt`` holding the part of the message after the project path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult

CASES = Path(__file__).resolve().parent.parent / "cases" / "recipe_errors"
CASE_DIRS = sorted(p for p in CASES.iterdir() if (p / "expected.txt").is_file())


def test_there_is_one_case_per_error_class() -> None:
    assert len(CASE_DIRS) >= 12


@pytest.mark.parametrize("case", CASE_DIRS, ids=[p.name for p in CASE_DIRS])
@pytest.mark.parametrize("command", ["plan", "build"])
def test_malformed_recipe_gives_one_line_and_exit_2(
        case: Path, command: str, lamina: Callable[..., CliResult]) -> None:
    expected = (case / "expected.txt").read_text().strip()
    result = lamina("-C", str(case), command)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    prefix = f"lamina: error: {case.resolve()}/"
    assert lines[0].startswith(prefix), lines[0]
    assert lines[0][len(prefix):].startswith(expected), lines[0]
