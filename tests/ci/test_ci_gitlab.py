"""The generated child pipeline follows the tree and is valid GitLab CI."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML

from tests.core.conftest import CliResult

ROOT = Path(__file__).resolve().parents[2]


def gitlab_schema() -> dict[str, object]:
    text = resources.files("check_jsonschema").joinpath(
        "builtin_schemas/vendor/gitlab-ci.json").read_text()
    schema: dict[str, object] = json.loads(text)
    return schema


def pipeline(lamina: Callable[..., CliResult], root: Path, *args: str) -> dict[str, object]:
    result = lamina("-C", str(root), "ci", "gitlab", *args)
    assert result.code == 0, result.err
    data: dict[str, object] = YAML(typ="safe").load(result.out)
    return data


def test_shipped_tree_pipeline_validates_against_gitlab_schema(
        lamina: Callable[..., CliResult], tmp_path: Path) -> None:
    data = pipeline(lamina, ROOT, "--all", "--store", str(tmp_path / "empty-store"))
    jsonschema.validate(data, gitlab_schema())
    assert "build:os-base:amd64" in data and "publish:hello-analysis" in data
    needs = data["build:hello-analysis:amd64"]["needs"]  # type: ignore[index]
    assert needs == [{"job": "build:python:amd64", "artifacts": True}]
    assert "password" not in json.dumps(data).lower()


def test_up_to_date_nodes_are_left_out(lamina: Callable[..., CliResult],
                                       tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    assert lamina("-C", str(root), "build").code == 0
    data = pipeline(lamina, root)
    jsonschema.validate(data, gitlab_schema())
    assert [k for k in data if k not in ("stages", "variables")] == ["nothing-to-do"]
    script = root / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + "echo x > /x\n")
    data = pipeline(lamina, root)
    jobs = sorted(k for k in data if ":" in k)
    assert jobs == ["build:leaf:amd64", "publish:leaf", "test:leaf:amd64"]
    assert data["build:leaf:amd64"]["needs"] == []  # type: ignore[index]


def test_repository_pipeline_is_valid_gitlab_ci() -> None:
    data = YAML(typ="safe").load((ROOT / "ci/.gitlab-ci.yml").read_text())
    jsonschema.validate(data, gitlab_schema())
    assert data["images"]["trigger"]["include"] == [{"artifact": "child.yml", "job": "generate"}]
    assert data["validate"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
