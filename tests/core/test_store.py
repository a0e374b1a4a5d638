"""The store lock, the store's writers and readers, and scratch directories, on real files
with real threads and processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lamina.ocilayout import OCI_MANIFEST, sha256_digest
from lamina.scratch import owned_dir
from lamina.store import Store


@contextmanager
def holder(code: str) -> Iterator[subprocess.Popen[str]]:
    """A Python child that runs ``code``, prints ``held`` and sleeps until killed."""
    script = textwrap.dedent(code) + "\nprint('held', flush=True)\nimport time\ntime.sleep(60)\n"
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def test_store_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with store.locked(), store.locked():  # re-entrant: a writer called under the lock
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with store.locked():
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    inside.wait(10)
    time.sleep(0.3)
    assert order == ["first in"]  # the second thread is waiting
    release.set()
    for thread in threads:
        thread.join(10)
    assert order == ["first in", "first out", "second in"]


def test_store_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    root = tmp_path / "store"
    code = f"""
        from pathlib import Path
        from lamina.store import Store
        Store(Path({str(root)!r})).lock.acquire()
    """
    with holder(code) as process:
        got = threading.Event()

        def take() -> None:
            with Store(root).locked():
                got.set()

        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        assert not got.wait(0.5)
        os.kill(process.pid, signal.SIGKILL)  # a killed holder never leaves the lock behind
        assert got.wait(10)
        thread.join(10)


def test_a_waiter_for_a_node_is_told_which_process_holds_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    code = f"""
        from pathlib import Path
        from lamina.store import Store
        held = Store(Path({str(root)!r})).node_lock("leaf", "amd64")
        held.__enter__()
    """
    with holder(code) as process:
        told: list[int | None] = []
        got = threading.Event()

        def take() -> None:
            with Store(root).node_lock("leaf", "amd64", told.append):
                got.set()

        thread = threading.Thread(target=take, daemon=True)
        thread.start()
        assert not got.wait(0.5)
        assert told == [process.pid]
        process.kill()
        assert got.wait(10)
        thread.join(10)
    # free locks are taken without waiting, and say nothing
    with Store(root).node_lock("leaf", "amd64", told.append):
        pass
    assert told == [process.pid]


WRITER = """
import sys
from pathlib import Path
from lamina.store import Store
store = Store(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    name = f"{sys.argv[2]}-{i}"
    store.record_publication("app", name, {"tags": [name]})
    store.put_manifest(name, ('{"n":"' + name + '"}').encode(),
                       "application/vnd.oci.image.manifest.v1+json")
"""


def test_concurrent_writers_in_threads_and_processes_lose_nothing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = Store(root)
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), f"proc{n}", "15"])
                 for n in range(3)]

    def write(prefix: str) -> None:
        for i in range(15):
            name = f"{prefix}-{i}"
            store.record_publication("app", name, {"tags": [name]})
            store.put_manifest(name, ('{"n":"' + name + '"}').encode(), OCI_MANIFEST)

    threads = [threading.Thread(target=write, args=(f"thread{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for process in processes:
        assert process.wait(timeout=60) == 0
    expected = {f"{who}{n}-{i}" for who in ("proc", "thread") for n in range(3)
                for i in range(15)}
    assert set(store.read_publications("app")) == expected
    refs = store.refs()
    assert set(refs) == expected
    for name, digest in refs.items():
        assert store.read_blob(digest) == ('{"n":"' + name + '"}').encode()
    assert (root / "oci-layout").read_bytes() == b'{"imageLayoutVersion":"1.0.0"}'
    assert [p.name for p in root.rglob("*") if p.name.endswith((".tmp", ".link"))] == []


@pytest.mark.parametrize("damage", [b"", b"{\"tags\": [", b"[1, 2]", b"\xff\xfe"])
def test_empty_or_damaged_records_and_publications_read_as_absent(
        tmp_path: Path, damage: bytes) -> None:
    store = Store(tmp_path / "store")
    store.write_record("app", "amd64", {"key": "k"})
    store.record_publication("app", "r/app", {"tags": ["v1"]})
    assert store.read_record("app", "amd64") == {"key": "k"}
    store.record_path("app", "amd64").write_bytes(damage)
    store.publication_path("app").write_bytes(damage)
    assert store.read_record("app", "amd64") == {}
    assert store.read_publications("app") == {}


def test_a_report_counts_only_when_its_record_vouches_for_its_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    sbom = b'{"bomFormat": "CycloneDX"}\n'
    path = store.report_path("app", "amd64", "cdx.json")
    path.parent.mkdir(parents=True)
    path.write_bytes(sbom)
    assert store.report("app", "amd64", "cdx.json") is None  # no record names it
    store.write_record("app", "amd64", {"reports": {"cdx.json": {
        "digest": sha256_digest(sbom), "size": len(sbom)}}})
    assert store.report("app", "amd64", "cdx.json") == sbom
    for damage in (b"", sbom[:-3], sbom.replace(b"Cyclone", b"cyclone")):
        path.write_bytes(damage)
        assert store.report("app", "amd64", "cdx.json") is None


def test_scratch_directories_are_private_and_swept_only_when_their_owner_is_gone(
        tmp_path: Path) -> None:
    parent = tmp_path / "work"
    code = f"""
        from pathlib import Path
        from lamina.scratch import owned_dir
        held = owned_dir(Path({str(parent)!r}), "leaf-amd64-")
        held.__enter__()
    """
    with holder(code) as alive:
        with owned_dir(parent, "leaf-amd64-") as mine:
            others = [p for p in parent.iterdir() if p.is_dir() and p != mine]
            assert len(others) == 1  # the live owner's directory is left alone
            (mine / "Containerfile").write_text("FROM scratch\n")
        assert not mine.exists()
        alive.kill()
        alive.wait(timeout=10)
        with owned_dir(parent, "leaf-amd64-") as again:
            # the killed owner's directory and lock were swept
            assert sorted(p.name for p in parent.iterdir()) == sorted(
                [again.name, again.name + ".owner"])
    assert list(parent.iterdir()) == []


def test_index_written_by_the_store_is_an_oci_layout_skopeo_reads(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = store.put_blob(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
        "size": len(config)}, "layers": []}).encode()
    digest, _ = store.put_manifest("empty-amd64", manifest, OCI_MANIFEST)
    proc = subprocess.run(["skopeo", "inspect", "--raw", store.transport("empty-amd64")],
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sha256_digest(proc.stdout) == digest
    stored = store.get("empty-amd64")
    assert stored is not None and stored.manifest_digest == digest
    # a manifest blob whose bytes no longer match its digest is not an image
    store.blob_path(digest).write_bytes(manifest.replace(b": 2,", b": 3,"))
    assert store.get("empty-amd64") is None
