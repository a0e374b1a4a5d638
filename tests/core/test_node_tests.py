"""A node's tests run in one container, import tests in one interpreter, each test reported on
its own; storing a node writes only its new layers, reusing the parent's blobs by digest.

One build of tests/trees/runner (a 13 MB Python root and three small children) serves every
test here: it runs as a child process whose commands are recorded (``execs``, see
tests/core/faults/sitecustomize.py), paused once when the ``imports`` node's test container is
about to start, which is after its export: the staging layout it was exported into is read
then, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamina.ocilayout import sha256_digest
from lamina.store import Store
from tests.core import processes
from tests.core.conftest import TREES, require_tool

TIMEOUT = "5"  # LAMINA_TEST_TIMEOUT for the run: the "hangs" test is ended after it
LEFT_RUNNING = "sleep 3137"  # what the "leaves a process running" test starts


@dataclass
class RunnerBuild:
    root: Path
    results: dict[str, dict[str, Any]]  # build --json, by image
    execs: list[list[str]]  # every command lamina started
    staging: dict[str, int]  # blobs of the imports node's staging layout: digest -> size
    staging_files: list[str]  # every file there, relative
    index: dict[str, Any]  # that layout's index.json


def copy_tree(target: Path) -> Path:
    shutil.copytree(TREES / "runner", target, ignore=shutil.ignore_patterns(".lamina"))
    return target


def read_staging(root: Path) -> tuple[dict[str, int], list[str], dict[str, Any]]:
    layouts = [d for d in (root / ".lamina/.store.staging").iterdir() if d.is_dir()]
    assert len(layouts) == 1, layouts  # -j 1: only the paused node is being stored
    layout = layouts[0]
    blobs = {f"sha256:{p.name}": p.stat().st_size
             for p in (layout / "blobs/sha256").iterdir()}
    files = sorted(str(p.relative_to(layout)) for p in layout.rglob("*") if p.is_file())
    return blobs, files, json.loads((layout / "index.json").read_text())


@pytest.fixture(scope="module")
def runner_build(tmp_path_factory: pytest.TempPathFactory) -> RunnerBuild:
    require_tool("buildah")
    base = tmp_path_factory.mktemp("runner")
    root = copy_tree(base / "runner")
    execs = base / "execs.jsonl"
    paused = base / "paused"
    child = processes.start(
        "-C", str(root), "build", "--json", "-j", "1", execs=execs, paused=paused,
        fault="pause:subprocess.Popen:linux/amd64 localhost/lamina/imports:",
        LAMINA_TEST_TIMEOUT=TIMEOUT)
    deadline = time.monotonic() + 900
    while not paused.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the imports node never reached its tests"
        time.sleep(0.05)
    try:
        staging, files, index = read_staging(root)
    finally:
        (base / "paused.go").touch()
    code, out, err = processes.finish(child, timeout=900)
    assert code == 1, out + err  # two nodes have failing tests, on purpose
    results = {r["image"]: r for r in json.loads(out)}
    commands = [json.loads(line) for line in execs.read_text().splitlines()]
    return RunnerBuild(root, results, commands, staging, files, index)


def results_by_name(build: RunnerBuild, image: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in build.results[image]["tests"]}


def test_storing_a_node_writes_only_its_new_layers(runner_build: RunnerBuild) -> None:
    store = Store(runner_build.root / ".lamina/store")
    parent, node = store.get("pybase-amd64"), store.get("imports-amd64")
    assert parent is not None and node is not None
    assert len(parent.layers) == 1 and len(node.layers) == 3
    # the parent's compressed layer is reused by digest: the node names the very same blob
    assert node.layers[0] == parent.layers[0]
    parent_layer = int(parent.layers[0]["size"])
    assert parent_layer > 10_000_000

    # what the export wrote: the two new layers, the config and the manifest, nothing else
    # (no blob of the parent's layer, compressed or not, and no placeholder left)
    manifest_digest = runner_build.index["manifests"][0]["digest"]
    new = {str(d["digest"]) for d in node.layers[1:]}
    assert set(runner_build.staging) == {manifest_digest, node.config_digest, *new}
    assert str(parent.layers[0]["digest"]) not in runner_build.staging
    assert sum(runner_build.staging.values()) < 20_000  # 13 MB would be the parent again
    assert 0 not in runner_build.staging.values()
    assert runner_build.staging_files == sorted(
        ["index.json", "oci-layout",
         *[f"blobs/sha256/{d.removeprefix('sha256:')}" for d in runner_build.staging]])
    log = (runner_build.root / ".lamina/logs/imports-amd64.log").read_text()
    assert "lamina: export of imports-amd64: 2 new layers and the config written" in log
    assert "1 parent layers reused from the store" in log

    # and the stored image is exactly what it says: every blob matches its digest
    for desc in [*node.layers, {"digest": node.config_digest}]:
        blob = store.blob_path(str(desc["digest"])).read_bytes()
        assert sha256_digest(blob) == desc["digest"]


def test_a_nodes_tests_and_probe_share_one_container(runner_build: RunnerBuild) -> None:
    froms = [argv for argv in runner_build.execs if argv[:2] == ["buildah", "from"]]
    by_image: dict[str, int] = {}
    for argv in froms:
        image = argv[-1].split("/")[-1].split(":")[0]
        by_image[image] = by_image.get(image, 0) + 1
        assert argv[argv.index("--name") + 1].startswith("lamina-test-"), argv
    # one container per node: its inherited and own tests, and the package probe
    assert by_image == {"pybase": 1, "imports": 1, "shelltests": 1, "crash": 1}
    runs = [argv for argv in runner_build.execs if argv[:2] == ["buildah", "run"]]
    names = {argv[argv.index("--name") + 1] for argv in froms}
    assert {argv[argv.index("--") - 1] for argv in runs} <= names


def test_import_tests_run_in_one_interpreter_each_reported(runner_build: RunnerBuild) -> None:
    tests = results_by_name(runner_build, "imports")
    assert [name for name in tests] == [
        "python runs", "import probe_a", "import probe_b", "import probe_c", "interpreters"]
    assert all(t["passed"] for t in tests.values()), tests
    pids = dict(pair.split(":") for pair in tests["interpreters"]["output_tail"].split()[1:])
    assert sorted(pids) == ["probe_a", "probe_b", "probe_c"]
    assert len(set(pids.values())) == 1  # one process imported the three modules
    assert tests["import probe_a"]["origin"] == "layer imports (automatic)"


def test_a_failing_or_crashing_import_does_not_hide_the_others(
        runner_build: RunnerBuild) -> None:
    crash = runner_build.results["crash"]
    assert crash["outcome"] == "failed"
    assert crash["error"] == ("tests failed: import broken_mod (exit 1), "
                              "import crash_mod (exit 137)")
    tests = results_by_name(runner_build, "crash")
    # inherited tests ran too, in the chain's order
    assert list(tests) == [
        "python runs", "import probe_a", "import probe_b", "import probe_c", "interpreters",
        "import broken_mod", "import crash_mod", "import probe_d",
        "interpreters after the crash"]
    broken, crashed = tests["import broken_mod"], tests["import crash_mod"]
    assert broken["output_tail"].endswith(" | ValueError: broken on purpose"), broken
    log = (runner_build.root / ".lamina/logs/crash-amd64.log").read_text()
    assert "$ test: python3 -c 'import broken_mod'\nimporting broken_mod\nTraceback" in log
    assert crashed["output_tail"] == "crashing the interpreter"  # its own output only
    assert tests["import probe_d"]["passed"]  # imported by a new interpreter after the crash
    assert tests["import probe_d"]["output_tail"] == ""
    record = json.loads(
        (runner_build.root / ".lamina/store/lamina/crash/amd64.json").read_text())
    recorded = {t["name"]: t for t in record["tests"]["results"]}
    assert recorded["import crash_mod"]["exit_code"] == 137
    assert recorded["import probe_d"]["passed"] is True


def test_shell_tests_keep_their_own_output_exit_code_and_user(
        runner_build: RunnerBuild) -> None:
    shell = runner_build.results["shelltests"]
    assert shell["error"] == "tests failed: fails loudly (exit 3), hangs (exit 124)"
    tests = results_by_name(runner_build, "shelltests")
    assert {name: t["exit_code"] for name, t in tests.items()} == {
        "python runs": 0, "fails loudly": 3, "hangs": 124, "runs after the failures": 0,
        "runs as another user": 0, "leaves a process running": 0,
        "runs as the image user again": 0}
    assert tests["fails loudly"]["output_tail"] == "first line of output | the reason it fails"
    assert tests["hangs"]["output_tail"] == f"lamina: timed out after {TIMEOUT}s"
    assert tests["runs after the failures"]["output_tail"] == "still here"
    assert tests["runs as another user"]["output_tail"] == "uid 1000"
    assert tests["runs as the image user again"]["output_tail"] == "uid 0"
    # nothing a test started outlives the run
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if cmdline.startswith(LEFT_RUNNING):
                left.append(cmdline)
    assert left == []


def test_lamina_test_reruns_each_node_in_one_container_reporting_each_test(
        runner_build: RunnerBuild, tmp_path: Path) -> None:
    execs = tmp_path / "execs.jsonl"
    code, out, err = processes.run("-C", str(runner_build.root), "test", "crash", "--json",
                                   execs=execs, timeout=600)
    assert code == 1, out + err
    rows = {(r["image"], r["name"]): r for r in json.loads(out)}
    assert rows[("crash", "import crash_mod")]["exit_code"] == 137
    assert rows[("crash", "import crash_mod")]["output_tail"] == "crashing the interpreter"
    assert rows[("crash", "import probe_d")]["passed"] is True
    tested = sorted({image for image, _ in rows})
    froms = [json.loads(line) for line in execs.read_text().splitlines()
             if json.loads(line)[:2] == ["buildah", "from"]]
    assert sorted(os.path.basename(argv[-1]).split(":")[0] for argv in froms) == tested
