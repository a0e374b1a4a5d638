"""The docker backend applies the same rendered image config (``changes`` of a commit,
parsed by the engine's own Dockerfile parser): hostile values arrive byte for byte too."""

from __future__ import annotations

import io
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

from lamina.platforms import parse_platform
from lamina.recipe import load_recipe
from lamina.render import build_unit
from tests.core.hostile_tree import Values, write_tree
from tests.core.test_render_built import SPECIAL


def test_engine_commit_keeps_hostile_config_values(docker_engine: Any) -> None:
    v = Values()
    v.env = {f"V{i}": value for i, value in enumerate(SPECIAL)}
    v.labels = {f"org.example.l{i}": value for i, value in enumerate(SPECIAL)}
    v.workdir = "/opt/it's a \"dir\" $X\\"
    v.entrypoint = SPECIAL[:5]
    v.cmd = SPECIAL[5:10]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        write_tree(root, v)
        recipe = load_recipe(root)
        unit = build_unit(recipe, recipe.images["img"], parse_platform("linux/amd64"),
                          1_700_000_000, None)
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    repository = f"lamina-test/docker-quoting-{uuid.uuid4().hex[:12]}"
    docker_engine.api.import_image_from_data(empty.getvalue(), repository=repository,
                                             tag="base")
    container = docker_engine.containers.create(f"{repository}:base", command=["/none"])
    try:
        committed = container.commit(repository=repository, tag="config",
                                     changes=unit.config_instructions())
        config = docker_engine.images.get(committed.id).attrs["Config"]
    finally:
        container.remove(force=True)
        for tag in ("config", "base"):
            docker_engine.images.remove(f"{repository}:{tag}", force=True)
    env = dict(entry.split("=", 1) for entry in config["Env"] or [])
    assert {k: env[k] for k in v.env} == v.env
    assert {k: config["Labels"][k] for k in v.labels} == v.labels
    assert config["WorkingDir"] == v.workdir
    assert config["User"] == v.user
    assert config["Entrypoint"] == v.entrypoint
    assert config["Cmd"] == v.cmd
