"""An absurd SOURCE_DATE_EPOCH (negative, 10**20, not a number) is refused in one line that
says where it came from and the valid range, from every source, never a datetime overflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult

Lamina = Callable[..., CliResult]
RANGE = "is outside the valid range of seconds since 1970: 0 to 253402300799 (9999-12-31T23:59:59Z)"


@pytest.fixture
def project(tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SOURCE_DATE_EPOCH", "LAMINA_SOURCE_DATE_EPOCH"):
        monkeypatch.delenv(name, raising=False)
    return tree("tiny")


@pytest.mark.parametrize("value", ["-1", "100000000000000000000", "253402300800"])
@pytest.mark.parametrize("variable", ["SOURCE_DATE_EPOCH", "LAMINA_SOURCE_DATE_EPOCH"])
def test_environment(lamina: Lamina, project: Path, monkeypatch: pytest.MonkeyPatch,
                     variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    for command in (["plan"], ["render", "app"], ["build", "--no-test"]):
        result = lamina("-C", str(project), *command)
        assert result.code == 2, (command, result.err)
        assert result.err == f"lamina: error: {variable}: {value} {RANGE}\n"


def test_the_flag(lamina: Lamina, project: Path) -> None:
    result = lamina("-C", str(project), "plan", "--source-date-epoch", "-5")
    assert result.code == 2
    assert result.err == f"lamina: error: --source-date-epoch: -5 {RANGE}\n"


def test_the_recipe(lamina: Lamina, project: Path) -> None:
    recipe = project / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("source_date_epoch: 1700000000",
                                                 "source_date_epoch: 100000000000000000000"))
    result = lamina("-C", str(project), "plan")
    assert result.code == 2
    assert result.err == (f"lamina: error: {recipe}: source_date_epoch: 100000000000000000000 "
                          f"{RANGE}\n")


def test_not_a_number(lamina: Lamina, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = lamina("-C", str(project), "plan")
    assert result.code == 2
    assert result.err == ("lamina: error: SOURCE_DATE_EPOCH: expected whole seconds since 1970 "
                          "(0 to 253402300799), got 'yesterday'\n")


def test_the_edges_are_accepted(lamina: Lamina, project: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", "253402300799"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
        result = lamina("-C", str(project), "render", "app")
        assert result.code == 0, result.err
