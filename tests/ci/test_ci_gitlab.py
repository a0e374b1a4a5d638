"""The generated child pipeline follows the tree and is valid GitLab CI."""

from __future__ import annotations

import json
import shutil
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
    shared = tmp_path / "empty-store"
    data = pipeline(lamina, ROOT, "--all", "--store", str(shared))
    jsonschema.validate(data, gitlab_schema())
    assert "build:os-base:amd64" in data and "publish:analysis-example" in data
    needs = data["build:analysis-example:amd64"]["needs"]  # type: ignore[index]
    # A store outside the checkout is shared by the jobs: nothing is handed over as artifacts.
    assert needs == [{"job": "build:notebook:amd64", "artifacts": False}]
    assert data["variables"]["LAMINA_STORE"] == str(shared)  # type: ignore[index]
    assert not any("artifacts" in job and ".lamina/store" in json.dumps(job["artifacts"])
                   for job in data.values() if isinstance(job, dict))
    assert "password" not in json.dumps(data).lower()


def test_store_in_the_checkout_travels_as_artifacts_along_needs(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    data = pipeline(lamina, root, "--setup", "scripts/setup", "--lamina", ".venv/bin/lamina")
    jsonschema.validate(data, gitlab_schema())
    assert data["variables"] == {"LAMINA": ".venv/bin/lamina",  # type: ignore[index]
                                 "LAMINA_STORE": ".lamina/store", "GIT_DEPTH": "0"}
    build = data["build:app:amd64"]
    assert build["needs"] == [{"job": "build:base:amd64", "artifacts": True}]  # type: ignore
    assert build["artifacts"]["paths"] == [".lamina/store", ".lamina/logs"]  # type: ignore
    assert build["script"] == ["scripts/setup",  # type: ignore[index]
                               "$LAMINA build app --platform linux/amd64 --no-test"]
    assert data["test:app:amd64"]["artifacts"]["paths"] == [".lamina/store"]  # type: ignore
    # A publish job waits for its parent's, whose publication record names the base.
    assert data["publish:leaf"]["needs"] == [  # type: ignore[index]
        {"job": "test:leaf:amd64", "artifacts": True}, {"job": "publish:app", "artifacts": True}]
    assert data["publish:app"]["artifacts"]["paths"] == [  # type: ignore[index]
        ".lamina/store/lamina/app/published.json"]
    assert data["publish:base"]["needs"] == [  # type: ignore[index]
        {"job": "test:base:amd64", "artifacts": True}]


def test_tree_in_a_subdirectory_of_the_checkout(
        lamina: Callable[..., CliResult], tmp_path: Path) -> None:
    checkout = tmp_path / "repo"
    (checkout / ".git").mkdir(parents=True)
    shutil.copytree(ROOT / "tests/trees/tiny", checkout / "images-tree")
    data = pipeline(lamina, checkout / "images-tree")
    jsonschema.validate(data, gitlab_schema())
    assert data["variables"]["LAMINA_PROJECT"] == "images-tree"  # type: ignore[index]
    assert data["variables"]["LAMINA_STORE"] == ".lamina/store"  # type: ignore[index]
    assert data["build:base:amd64"]["artifacts"]["paths"] == [  # type: ignore[index]
        "images-tree/.lamina/store", "images-tree/.lamina/logs"]
    assert data["build:base:amd64"]["script"] == [  # type: ignore[index]
        "$LAMINA build base --platform linux/amd64 --no-test"]


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
