"""A failing node blocks only its subtree, says why with its log, and a rerun resumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_a_failed_step_is_summarised_by_its_layer_and_its_own_last_output(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    root = tree("failing-steps")
    result = lamina("-C", str(root), "build", "noisy", "silent", "--json")
    assert result.code == 1
    rows = {r["image"]: r for r in result.json()}
    # the second of two script layers failed: it is named (not the first), and the summary is
    # the step's last three output lines (stdout and stderr reach buildah through separate
    # pipes, so only one stream is used: their relative order is not kept)
    assert rows["noisy"]["error"] == (
        "buildah bud failed (exit 5) in layer second-step (script) at step 4/5: line two | "
        f"line three | the last line before failing [log: {rows['noisy']['log']}]")
    # a step that printed nothing: buildah's reason, without the instruction it repeats
    assert rows["silent"]["error"] == (
        "buildah bud failed (exit 3) in layer silent-step (script) at step 3/4: "
        f"exit status 3 [log: {rows['silent']['log']}]")
    for row in rows.values():
        assert "building at STEP" not in row["error"] and "&{" not in row["error"]


def _processes_running(marker: bytes) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == marker:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_hung_build_step_times_out_in_one_line_and_is_killed_with_its_processes(
        lamina: Lamina, tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("buildah")
    root = tree("failing-steps")
    assert lamina("-C", str(root), "build", "base", "--no-test").code == 0
    monkeypatch.setenv("LAMINA_BUILD_TIMEOUT", "15")
    result = lamina("-C", str(root), "build", "hangs", "--json")
    assert result.code == 1
    hangs = next(r for r in result.json() if r["image"] == "hangs")
    assert hangs["error"] == (
        "buildah bud timed out after 15s in layer hang-step (script) at step 3/4 "
        f"(LAMINA_BUILD_TIMEOUT) [log: {hangs['log']}]")
    assert 15 <= hangs["seconds"] < 60
    assert _processes_running(b"sleep\x003141\x00") == []
    plan = {e["image"]: e for e in lamina("-C", str(root), "plan", "--json").json()}
    assert plan["hangs"]["status"] == "build"
    assert plan["hangs"]["reason"].startswith("last build failed: buildah bud timed out")


def test_a_bad_build_timeout_is_one_line(
        lamina: Lamina, tree: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree("failing-steps")
    monkeypatch.setenv("LAMINA_BUILD_TIMEOUT", "soon")
    result = lamina("-C", str(root), "build", "base", "--no-test", "--json")
    assert result.code == 2
    assert result.err == ("lamina: error: LAMINA_BUILD_TIMEOUT: expected a positive number of "
                          "seconds, got 'soon'\n")
    assert result.out == ""
