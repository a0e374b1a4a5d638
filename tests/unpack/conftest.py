"""The CLI runner for unpack/exec tests: captures at the file-descriptor level, because
``lamina exec`` output comes from the contained process, not from Python."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lamina.cli import main
from tests.core.conftest import CliResult, tree

__all__ = ["lamina", "tree"]


@pytest.fixture
def lamina(capfd: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str) -> CliResult:
        capfd.readouterr()
        code = main(list(args))
        captured = capfd.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
