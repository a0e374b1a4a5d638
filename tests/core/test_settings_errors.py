"""A setting with a value that is not one is refused in one line naming where it came from,
never replaced by its default in silence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult


@pytest.mark.parametrize(("env", "args", "message"), [
    ({"LAMINA_JOBS": "x"}, ["plan"],
     "LAMINA_JOBS: expected a whole number of nodes of at least 1, got 'x'"),
    ({}, ["build", "--jobs", "0"],
     "--jobs: expected a whole number of nodes of at least 1, got '0'"),
    ({"LAMINA_BUILD_TIMEOUT": "soon"}, ["build"],
     "LAMINA_BUILD_TIMEOUT: expected a positive number of seconds, got 'soon'"),
    ({"LAMINA_TEST_TIMEOUT": "0"}, ["build"],
     "LAMINA_TEST_TIMEOUT: expected a positive number of seconds, got '0'"),
    ({"LAMINA_TEST_TIMEOUT": "inf"}, ["build"],
     "LAMINA_TEST_TIMEOUT: expected a positive number of seconds, got 'inf'"),
    ({"LAMINA_REGISTRY_RETRIES": "many"},
     ["plan", "--against", "127.0.0.1:9/hep", "--insecure-loopback"],
     "LAMINA_REGISTRY_RETRIES='many': expected a whole number of retries between 0 and 100"),
    ({"LAMINA_REGISTRY_RETRIES": "-1"},
     ["plan", "--against", "127.0.0.1:9/hep", "--insecure-loopback"],
     "LAMINA_REGISTRY_RETRIES='-1': expected a whole number of retries between 0 and 100"),
])
def test_a_bad_setting_is_one_line_naming_its_source(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str],
        message: str) -> None:
    root = tree("tiny")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = lamina("-C", str(root), *args)
    assert (result.code, result.err) == (2, f"lamina: error: {message}\n")


def test_a_bad_jobs_in_the_recipe_names_the_file(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text("\n".join(line for line in recipe.read_text().splitlines()
                                if not line.startswith("jobs:")) + "\njobs: 0\n")
    result = lamina("-C", str(root), "plan")
    # the recipe's schema finds it first, with its line
    assert (result.code, result.err) == (
        2, f"lamina: error: {root.resolve() / 'recipe.yaml'}:6: jobs: 0 is out of range "
           "(minimum 1)\n")
