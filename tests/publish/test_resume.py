"""A publish killed midway is completed by a rerun, and no tag ever names a partial index."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def missing_under(registry: TlsRegistry, image: str, tag: str) -> list[str]:
    """What ``image:tag`` names that the registry does not hold: an index's children, a
    manifest's config and layers; [] also while the tag does not exist yet."""
    answer = registry.get(f"/v2/hep/{image}/manifests/{tag}", f"{INDEX}, {MANIFEST}")
    if answer.status_code != 200:
        return []
    body = answer.json()
    if body.get("mediaType") == INDEX:
        return [f"{image}:{tag} names missing {child['digest']}" for child in body["manifests"]
                if registry.get(f"/v2/hep/{image}/manifests/{child['digest']}",
                                MANIFEST).status_code != 200]
    return [f"{image}:{tag} names missing blob {desc['digest']}"
            for desc in [body["config"], *body["layers"]]
            if registry.get(f"/v2/hep/{image}/blobs/{desc['digest']}").status_code != 200]


def test_killed_publish_resumes_and_never_exposes_an_incomplete_index(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry) -> None:
    require_tool("buildah")
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    assert lamina("-C", str(root), "build").code == 0
    args = ["-C", str(root), "publish", "--to", f"{tls_registry.host}/hep", "--tag", "v2",
            "--cert-dir", str(tls_registry.cert_dir), "--authfile", str(tls_registry.authfile)]

    problems: list[str] = []
    resolved = 0
    stop = threading.Event()

    def watch() -> None:
        """Poll every tag the publish creates; a resolvable index must be complete."""
        nonlocal resolved
        while not stop.is_set():
            for image in ("base", "app", "leaf"):
                answer = tls_registry.get(f"/v2/hep/{image}/manifests/v2", INDEX)
                if answer.status_code != 200:
                    continue
                resolved += 1
                for child in answer.json()["manifests"]:
                    got = tls_registry.get(f"/v2/hep/{image}/manifests/{child['digest']}",
                                           MANIFEST)
                    if got.status_code != 200:
                        problems.append(f"{image}:v2 names missing {child['digest']}")
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lamina_bin = str(Path(sys.executable).with_name("lamina"))
    process = subprocess.Popen([lamina_bin, *args], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it (and its skopeo children) as soon as the first blob upload has begun.
    deadline = time.monotonic() + 60
    while "/blobs/uploads/" not in tls_registry.access_log.read_text(errors="replace"):
        assert process.poll() is None, "publish finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert tls_registry.get("/v2/hep/leaf/manifests/v2", INDEX).status_code == 404

    rerun = lamina(*args, "--json")
    stop.set()
    watcher.join(timeout=10)
    assert rerun.code == 0, rerun.out + rerun.err
    assert problems == []
    assert resolved > 0  # the watcher did see the finished indexes
    for entry in rerun.json():
        index = tls_registry.get(f"/v2/hep/{entry['image']}/manifests/v2", INDEX).json()
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == [
            "amd64", "arm64"]
    # and a third run has nothing left to do
    third = lamina(*args, "--json")
    assert not any(t["uploaded"] for e in third.json() for t in e["tags"])
    assert json.loads(third.out)


def test_registry_killed_mid_publish_and_restarted_rerun_completes(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry) -> None:
    """The registry dies under a publish (SIGKILL) and comes back: the publish fails in one
    line after its bounded retries, the rerun completes with nothing lost, and no tag ever
    resolved to an index whose children were missing."""
    require_tool("buildah")
    root = tree("tiny")
    assert lamina("-C", str(root), "build").code == 0
    args = ["-C", str(root), "publish", "--to", f"{tls_registry.host}/hep", "--tag", "v4",
            "--cert-dir", str(tls_registry.cert_dir), "--authfile", str(tls_registry.authfile)]
    problems: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for image in ("base", "app", "leaf"):
                with contextlib.suppress(requests.RequestException):  # the registry is down
                    problems.extend(missing_under(tls_registry, image, "v4"))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lamina_bin = str(Path(sys.executable).with_name("lamina"))
    env = {**os.environ, "LAMINA_REGISTRY_RETRIES": "2"}
    process = subprocess.Popen([lamina_bin, *args], start_new_session=True, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "/blobs/uploads/" not in tls_registry.access_log.read_text(errors="replace"):
        assert process.poll() is None, "publish finished before the registry could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    tls_registry.kill()
    _, err = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    tls_registry.start()

    rerun = lamina(*args, "--json")
    stop.set()
    watcher.join(timeout=10)
    assert rerun.code == 0, rerun.out + rerun.err
    assert problems == []
    for image in ("base", "app", "leaf"):
        # a single-platform image: <tag> is its per-arch manifest, complete
        tagged = tls_registry.get(f"/v2/hep/{image}/manifests/v4", f"{INDEX}, {MANIFEST}")
        assert tagged.status_code == 200 and tagged.headers["Content-Type"] == MANIFEST
        assert missing_under(tls_registry, image, "v4") == []
    third = lamina(*args, "--json")
    assert not any(t["uploaded"] for e in third.json() for t in e["tags"])
