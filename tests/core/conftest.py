"""Fixtures for the core build path: copies of test trees and a CLI runner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamina.cli import main

TREES = Path(__file__).resolve().parent.parent / "trees"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def lamina(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the real CLI in-process and capture what a user would see."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a test tree into a private directory (its store and state live there too)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(TREES / name, target, symlinks=True,
                        ignore=shutil.ignore_patterns(".lamina"))
        return target

    return copy


def require_tool(name: str) -> None:
    """A test that needs a tool fails when it is missing: CI must never skip silently."""
    if shutil.which(name) is None:
        pytest.fail(f"{name} is required for this test; run scripts/setup")
