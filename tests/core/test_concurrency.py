"""Two ``lamina build`` runs on one project: the later one waits for what the earlier one is
building, says so in one line, re-plans, and both succeed with every node built once."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lamina.store import Store
from tests.core import processes
from tests.core.conftest import CliResult, require_tool


def test_two_concurrent_builds_wait_for_each_other_and_both_succeed(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    root = tree("tiny")
    paused = tmp_path / "first-paused"
    # The first run stops right before building base (holding base's node lock) ...
    first = processes.start("-C", str(root), "build", "--json",
                            fault="pause:subprocess.Popen: bud ", paused=paused)
    second: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 300
        while not paused.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never reached the build"
            time.sleep(0.05)
        # ... so the second one, started now, must wait for it.
        second = processes.start("-C", str(root), "build", "--json")
        lines: list[str] = []

        def read() -> None:
            assert second.stderr is not None
            for line in second.stderr:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        expected = (f"waiting for base linux/amd64: another lamina run (pid {first.pid}) is "
                    "building it")
        while not any(expected in line for line in lines):
            assert second.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        (paused.parent / (paused.name + ".go")).touch()
        code_1, out_1, err_1 = processes.finish(first)
        assert second.stdout is not None
        out_2 = second.stdout.read()
        code_2 = second.wait(timeout=600)
        reader.join(10)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    assert code_1 == 0, out_1 + err_1
    assert code_2 == 0, out_2 + "".join(lines)
    waits = [line for line in lines if "waiting for" in line]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d waiting for \S+ linux/amd64: another lamina run "
                            rf"\(pid {first.pid}\) is building it\n", line) for line in waits)
    outcomes = [{r["image"]: r["outcome"] for r in json.loads(out)} for out in (out_1, out_2)]
    assert outcomes[0]["base"] == "built" and outcomes[1]["base"] == "up-to-date"
    for image in ("base", "app", "leaf"):  # each node was built by exactly one of the runs
        assert sorted(o[image] for o in outcomes) == ["built", "up-to-date"], outcomes

    plan = lamina("-C", str(root), "plan", "--json").json()
    assert {e["image"]: e["status"] for e in plan} == {
        "base": "up-to-date", "app": "up-to-date", "leaf": "up-to-date"}
    store = Store(root / ".lamina/store")
    for image in ("base", "app", "leaf"):
        record = store.read_record(image, "amd64")
        assert record["verified"] is True and record["tests"]["status"] == "passed"
    assert list((root / ".lamina/work").iterdir()) == []
    assert list((root / ".lamina/.store.staging").iterdir()) == []
