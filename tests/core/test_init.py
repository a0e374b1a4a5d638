"""``lamina init`` scaffolds a valid analyst project on a digest-pinned parent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jsonschema
from ruamel.yaml import YAML

from lamina.recipe import load_recipe
from tests.ci.test_ci_gitlab import gitlab_schema
from tests.core.conftest import CliResult

PARENT = "registry.cern.ch/hep/framework:v1@sha256:" + "ab" * 32


def test_init_scaffolds_a_valid_project(lamina: Callable[..., CliResult],
                                        tmp_path: Path) -> None:
    target = tmp_path / "my-ana"
    result = lamina("init", str(target), "--from", PARENT)
    assert result.code == 0, result.err
    recipe = load_recipe(target)
    image = recipe.image("my-ana")
    assert image.external is not None and image.external.digest == "sha256:" + "ab" * 32
    assert [layer.kind for layer in image.layers] == ["pip", "files"]
    assert [t.run for t in recipe.test_chain("my-ana")] == ["python3 -c 'import my_ana'"]
    jsonschema.validate(YAML(typ="safe").load((target / ".gitlab-ci.yml").read_text()),
                        gitlab_schema())
    again = lamina("init", str(target), "--from", PARENT)
    assert again.code == 2 and "refusing to overwrite" in again.err


def test_init_refuses_an_unpinned_parent(lamina: Callable[..., CliResult],
                                         tmp_path: Path) -> None:
    result = lamina("init", str(tmp_path / "x"), "--from", "registry.cern.ch/hep/framework:v1")
    assert result.code == 2
    assert "pinned by digest" in result.err
