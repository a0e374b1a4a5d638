"""A failing node blocks only its subtree, says why with its log, and a rerun resumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool

Lamina = Callable[..., CliResult]


def test_failure_blocks_only_its_subtree_and_rerun_resumes(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    root = tree("failing")
    result = lamina("-C", str(root), "build", "--json")
    assert result.code == 1
    rows = {r["image"]: r for r in result.json()}
    assert rows["base"]["outcome"] == "built"
    assert rows["good"]["outcome"] == "built"
    assert rows["broken"]["outcome"] == "failed"
    assert "buildah bud failed" in rows["broken"]["error"]
    assert "deliberately broken" in rows["broken"]["error"]
    assert Path(rows["broken"]["log"]).is_file()
    assert rows["below-broken"]["outcome"] == "blocked"
    assert "parent broken failed" in rows["below-broken"]["error"]

    # The human summary names the failure and the log.
    table = lamina("-C", str(root), "build")
    assert table.code == 1
    assert "failed" in table.out and "log:" in table.out

    plan = {e["image"]: e for e in lamina("-C", str(root), "plan", "--json").json()}
    assert plan["broken"]["status"] == "build"
    assert plan["broken"]["reason"].startswith("last build failed")

    script = root / "layers/broken-step/run.sh"
    script.write_text("#!/bin/sh\necho fixed > /fixed\n")
    rerun = lamina("-C", str(root), "build", "--json")
    assert rerun.code == 0, rerun.out
    outcomes = {r["image"]: r["outcome"] for r in rerun.json()}
    assert outcomes == {"base": "up-to-date", "good": "up-to-date", "broken": "built",
                        "below-broken": "built"}


def test_failing_image_test_fails_the_node_and_is_recorded(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    root = tree("tiny")
    image_file = root / "images/leaf/image.yaml"
    image_file.write_text(image_file.read_text() + "  - name: must fail\n    run: exit 3\n")
    result = lamina("-C", str(root), "build", "--json")
    assert result.code == 1
    leaf = next(r for r in result.json() if r["image"] == "leaf")
    assert leaf["outcome"] == "failed"
    assert "must fail (exit 3)" in leaf["error"]
    tests = {t["name"]: t["passed"] for t in leaf["tests"]}
    # inherited tests ran too, root first
    assert tests == {"shell works": True, "env is set": True, "greeting present": True,
                     "script ran": True, "must fail": False}
    plan = {e["image"]: e for e in lamina("-C", str(root), "plan", "--json").json()}
    assert plan["leaf"]["status"] == "test" and "failed" in plan["leaf"]["reason"]
    tested = lamina("-C", str(root), "test", "leaf")
    assert tested.code == 1
    assert "must fail" in tested.out
