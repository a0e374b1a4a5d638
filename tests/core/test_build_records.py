"""A node is "built" and "tested" only when it was: what plan and publish trust after kills,
failed checks, damaged reports and records left from an earlier key."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lamina.store import Store
from tests.core import processes
from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry, tls_registry

__all__ = ["tls_registry"]

Lamina = Callable[..., CliResult]

# (what the run was doing, audit event, what the event's subject contains)
KILL_POINTS = [
    ("after the build, before the export", "subprocess.Popen", " push "),
    ("after the export and the hygiene check", "subprocess.Popen", "lamina-test-"),
    ("during the tests", "subprocess.Popen", "destination=/run/lamina-tests"),
    ("during the reports", "os.rename", "/lamina/leaf/amd64.manifest.md"),
    ("after the reports, before the ref", "os.rename", "/.lamina/store/index.json"),
    ("during the record", "os.rename", "/lamina/leaf/amd64.json"),
]


def plan(lamina: Lamina, root: Path) -> dict[str, dict[str, Any]]:
    result = lamina("-C", str(root), "plan", "--json")
    assert result.code == 0, result.out + result.err
    return {e["image"]: e for e in result.json()}


def publish_args(root: Path, registry: TlsRegistry, tag: str = "v1") -> list[str]:
    return ["-C", str(root), "publish", "leaf", "--to", f"{registry.host}/hep", "--tag", tag,
            "--cert-dir", str(registry.cert_dir), "--authfile", str(registry.authfile),
            "--json"]


def change_leaf(root: Path, marker: str) -> None:
    script = root / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + f"echo {marker} > /opt/hello/marker.txt\n")


def leftovers(root: Path) -> list[str]:
    """Scratch directories (build contexts, staging layouts) still on disk."""
    found = []
    for parent in (root / ".lamina/work", root / ".lamina/.store.staging"):
        if parent.is_dir():
            found += [p.name for p in parent.iterdir()]
    return found


def test_a_killed_build_is_never_up_to_date_nor_published_and_a_rerun_completes(
        lamina: Lamina, tree: Callable[[str], Path], tls_registry: TlsRegistry) -> None:
    require_tool("buildah")
    root = tree("tiny")
    assert lamina("-C", str(root), "build").code == 0
    for number, (point, event, needle) in enumerate(KILL_POINTS):
        change_leaf(root, f"change-{number}")
        before = plan(lamina, root)["leaf"]
        assert before["status"] == "build"
        code, out, err = processes.run("-C", str(root), "build", "--json",
                                       fault=f"kill:{event}:{needle}")
        assert code == -9, f"{point}: the fault did not fire ({code}): {out[-300:]}{err[-300:]}"

        after = plan(lamina, root)
        assert after["leaf"]["status"] == "build", (point, after["leaf"])
        assert after["leaf"]["key"] == before["key"]
        assert after["app"]["status"] == "up-to-date", point
        refused = lamina(*publish_args(root, tls_registry))
        assert refused.code == 1, point
        assert "leaf linux/amd64: not publishable (build:" in refused.json()[0]["error"], point

        rerun = lamina("-C", str(root), "build", "--json")
        assert rerun.code == 0, (point, rerun.out)
        assert {r["image"]: r["outcome"] for r in rerun.json()} == {
            "base": "up-to-date", "app": "up-to-date", "leaf": "built"}, point
        assert plan(lamina, root)["leaf"]["status"] == "up-to-date", point
        assert leftovers(root) == [], point
    published = lamina(*publish_args(root, tls_registry))
    assert published.code == 0, published.out + published.err


def test_a_node_failing_hygiene_is_not_stored_planned_again_and_refused_by_publish(
        lamina: Lamina, tree: Callable[[str], Path], tls_registry: TlsRegistry) -> None:
    require_tool("buildah")
    root = tree("tiny")
    script = root / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + "mkdir -p /var/log\necho left > /var/log/leftover.log\n")
    result = lamina("-C", str(root), "build", "--json")
    assert result.code == 1
    leaf = next(r for r in result.json() if r["image"] == "leaf")
    assert leaf["outcome"] == "failed"
    assert leaf["error"] == ("layer hygiene: hello-script: /var/log/leftover.log (log files) "
                             "(clean up in the same layer)")
    store = Store(root / ".lamina/store")
    assert store.get("leaf-amd64") is None  # never promoted
    assert not store.report_path("leaf", "amd64", "cdx.json").exists()

    entry = plan(lamina, root)["leaf"]
    assert entry["status"] == "build"
    assert entry["reason"].startswith("last build failed: layer hygiene: hello-script")
    refused = lamina(*publish_args(root, tls_registry))
    assert refused.code == 1
    assert "leaf linux/amd64: not publishable (build: last build failed" in \
        refused.json()[0]["error"]
    assert tls_registry.blob_uploads() == 0


def test_records_reports_and_tests_of_another_build_never_count(
        lamina: Lamina, tree: Callable[[str], Path], tls_registry: TlsRegistry) -> None:
    require_tool("buildah")
    root = tree("tiny")
    assert lamina("-C", str(root), "build").code == 0
    store = Store(root / ".lamina/store")
    first = store.read_record("leaf", "amd64")
    assert first["verified"] is True and first["tests"]["status"] == "passed"

    change_leaf(root, "second")
    assert lamina("-C", str(root), "build", "leaf", "--no-test").code == 0
    second = store.read_record("leaf", "amd64")
    assert second["key"] != first["key"]
    assert plan(lamina, root)["leaf"]["status"] == "test"

    # The previous key's passed tests, put back beside the new build, do not count.
    store.write_record("leaf", "amd64", {**second, "tests": first["tests"]})
    entry = plan(lamina, root)["leaf"]
    assert (entry["status"], entry["reason"]) == ("test", "tests never ran on this build")
    # Nor does the whole previous record (what a kill between ref and record would leave).
    store.write_record("leaf", "amd64", first)
    entry = plan(lamina, root)["leaf"]
    assert entry["status"] == "build"
    assert entry["reason"] == "stored image was never verified (an interrupted or older run)"
    # A record that claims the new digest but was never marked verified does not count.
    store.write_record("leaf", "amd64", {**second, "verified": False})
    assert plan(lamina, root)["leaf"]["status"] == "build"
    assert lamina(*publish_args(root, tls_registry)).code == 1

    assert lamina("-C", str(root), "build", "leaf").code == 0
    assert plan(lamina, root)["leaf"]["status"] == "up-to-date"

    # A report emptied by a full disk (or truncated) is never accepted.
    sbom = store.report_path("leaf", "amd64", "cdx.json")
    sbom.write_bytes(b"")
    entry = plan(lamina, root)["leaf"]
    assert (entry["status"], entry["reason"]) == (
        "build", "report amd64.cdx.json is missing or damaged")
    refused = lamina(*publish_args(root, tls_registry))
    assert refused.code == 1
    assert "report amd64.cdx.json is missing or damaged" in refused.json()[0]["error"]
    assert lamina("-C", str(root), "build", "leaf").code == 0
    assert json.loads(sbom.read_bytes())["bomFormat"] == "CycloneDX"
    published = lamina(*publish_args(root, tls_registry))
    assert published.code == 0, published.out


@pytest.mark.parametrize("damage", [b"", b"{\"key\": ", b"[]"])
def test_an_empty_or_damaged_record_reads_as_absent(
        lamina: Lamina, tree: Callable[[str], Path], damage: bytes) -> None:
    require_tool("buildah")
    root = tree("tiny")
    assert lamina("-C", str(root), "build", "base", "--no-test").code == 0
    (root / ".lamina/store/lamina/base/amd64.json").write_bytes(damage)
    entry = plan(lamina, root)["base"]
    assert (entry["status"], entry["reason"]) == (
        "build", "stored image was never verified (an interrupted or older run)")


def test_a_full_disk_while_storing_fails_in_one_line_and_leaves_nothing_accepted(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    require_tool("mount")
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and must run as root")
    root = tree("tiny")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], check=True,
                   timeout=30)
    try:
        store = disk / "store"
        build = ["-C", str(root), "build", "--store", str(store), "--json"]
        assert lamina(*build).code == 0
        change_leaf(root, "full-disk")
        paused = tmp_path / "paused"
        # exported into staging (on the small disk) and checked; paused before the test container
        child = processes.start(*build, fault="pause:subprocess.Popen:lamina-test-",
                                paused=paused)
        deadline = time.monotonic() + 300
        while not paused.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            for size in (1 << 20, 4096, 1):
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
        finally:
            os.close(fd)
        (tmp_path / "paused.go").touch()
        code, out, err = processes.finish(child)
        assert code == 1, out + err
        leaf = next(r for r in json.loads(out) if r["image"] == "leaf")
        assert leaf["outcome"] == "failed"
        assert leaf["error"] == f"storing leaf-amd64 in {store}: No space left on device"

        # nothing empty or half-written was left where a later run would read it
        files = [p for p in store.rglob("*") if p.is_file()]
        assert [p for p in files if p.stat().st_size == 0] == []
        assert [p for p in files if p.name.endswith((".tmp", ".link"))] == []
        assert list((disk / ".store.staging").iterdir()) == []
        assert lamina("-C", str(root), "plan", "--store", str(store), "--json").json()[2][
            "status"] == "build"

        filler.unlink()
        rerun = lamina(*build)
        assert rerun.code == 0, rerun.out
        entries = lamina("-C", str(root), "plan", "--store", str(store), "--json").json()
        assert [e["status"] for e in entries] == ["up-to-date"] * 3
        sbom = Store(store).report("leaf", "amd64", "cdx.json")
        assert sbom is not None and json.loads(sbom)["bomFormat"] == "CycloneDX"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, timeout=60)
