"""Make-like against a registry: ``plan --against`` and ``build --push`` on a real registry.

A second machine (a fresh copy of the tree, empty store) must see that the registry already
holds every node, build nothing and upload nothing; an edit to the top layer must rebuild
only that node. Per-arch release manifests carry the OCI annotations that trace them to the
commit and to the parent they were built on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _registry_gets(registry: TlsRegistry) -> int:
    text = registry.access_log.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if '"GET /v2/hep/' in line)


def test_build_push_then_a_fresh_machine_builds_and_uploads_nothing(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    monkeypatch.setenv("CI_PROJECT_URL", "https://gitlab.example.org/hep/images")
    monkeypatch.setenv("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
    root = tree("tiny")
    target = f"{tls_registry.host}/hep"
    registry = ["--to", target, "--cert-dir", str(tls_registry.cert_dir),
                "--authfile", str(tls_registry.authfile)]
    first = lamina("-C", str(root), "build", "--push", "--tag", "v1", "--json", *registry)
    assert first.code == 0, first.err + first.out
    assert {n["outcome"] for n in first.json()["nodes"]} == {"built"}
    assert all(not p["error"] for p in first.json()["published"])

    # The release manifest of leaf names its commit, version and the published app it is on.
    app = tls_registry.get("/v2/hep/app/manifests/v1-amd64", MANIFEST)
    leaf = tls_registry.get("/v2/hep/leaf/manifests/v1-amd64", MANIFEST).json()
    notes = leaf["annotations"]
    assert notes["org.opencontainers.image.version"] == "v1"
    assert notes["org.opencontainers.image.revision"] == "0123456789abcdef0123456789abcdef01234567"
    assert notes["org.opencontainers.image.source"] == "https://gitlab.example.org/hep/images"
    assert notes["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert notes["org.opencontainers.image.base.name"] == f"{target}/app:v1-amd64"
    assert notes["org.opencontainers.image.base.digest"] == app.headers["Docker-Content-Digest"]
    assert notes["dev.lamina.key"].startswith("sha256:")
    # so does its key-tagged build, with the parent's key tag as the registry holds it, not
    # buildah's local name (localhost/lamina/...) and local digest
    key_tag = f"lamina-{notes['dev.lamina.key'].removeprefix('sha256:')[:40]}"
    built = tls_registry.get(f"/v2/hep/leaf/manifests/{key_tag}", MANIFEST).json()
    parent = built["annotations"]["org.opencontainers.image.base.name"]
    assert parent.startswith(f"{target}/app:lamina-")
    held = tls_registry.get(f"/v2/hep/app/manifests/{parent.rsplit(':', 1)[1]}", MANIFEST)
    assert built["annotations"]["org.opencontainers.image.base.digest"] == \
        held.headers["Docker-Content-Digest"]
    assert "localhost" not in json.dumps(built)

    # Another machine: same tree, empty store. The plan sees everything in the registry with
    # at most two requests per node.
    fresh = tmp_path / "fresh"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".lamina"))
    against = ["--against", target, "--cert-dir", str(tls_registry.cert_dir),
               "--authfile", str(tls_registry.authfile)]
    local_only = lamina("-C", str(fresh), "plan", "--json").json()
    assert {e["status"] for e in local_only} == {"build"}
    gets_before = _registry_gets(tls_registry)
    plan = lamina("-C", str(fresh), "plan", "--json", *against)
    assert plan.code == 0, plan.err
    entries = plan.json()
    assert {e["status"] for e in entries} == {"up-to-date"}
    assert all(e["remote"].startswith(f"{target}/{e['image']}:lamina-") for e in entries)
    assert _registry_gets(tls_registry) - gets_before <= 2 * len(entries)

    # build --push there builds nothing and uploads no blob.
    uploads = tls_registry.blob_uploads()
    again = lamina("-C", str(fresh), "build", "--push", "--tag", "v1", "--json", *registry)
    assert again.code == 0, again.err + again.out
    assert {n["outcome"] for n in again.json()["nodes"]} == {"up-to-date"}
    assert tls_registry.blob_uploads() == uploads
    assert not any(t["uploaded"] for p in again.json()["published"] for t in p["tags"])
    # what was fetched instead of built came with its package manifest and SBOM
    sbom = fresh / ".lamina/store/lamina/app/amd64.cdx.json"
    assert json.loads(sbom.read_text())["bomFormat"] == "CycloneDX"

    # Change only the top layer: only leaf builds (on app fetched from the registry), and the
    # upload is that one layer plus its config.
    script = fresh / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + "echo v2 > /opt/hello/v2.txt\n")
    plan2 = lamina("-C", str(fresh), "plan", "--json", *against).json()
    assert {e["image"]: e["status"] for e in plan2} == {
        "base": "up-to-date", "app": "up-to-date", "leaf": "build"}
    third = lamina("-C", str(fresh), "build", "--push", "--tag", "v2", "--json", *registry)
    assert third.code == 0, third.err + third.out
    outcomes = {n["image"]: n["outcome"] for n in third.json()["nodes"]}
    assert outcomes == {"base": "up-to-date", "app": "up-to-date", "leaf": "built"}
    # leaf's new layer and its config, its new package manifest (JSON, Markdown) and two
    # SBOMs (one naming the key-tagged image, one the v2 release); of base and app only the
    # SBOM of their v2 release images (an SBOM names the image it is attached to)
    assert tls_registry.blob_uploads() - uploads == 8

    # A test added to app changes no key, but what the registry holds was never tested by
    # it: app and leaf (which inherits app's tests) are tested again, not taken as passed.
    image = fresh / "images/app/image.yaml"
    image.write_text(image.read_text() + "  - name: data directory listed\n"
                                          "    run: ls \"$HELLO_DIR\" > /dev/null\n")
    plan3 = lamina("-C", str(fresh), "plan", "--json", *against).json()
    assert {e["image"]: (e["status"], e["key"]) for e in plan3} == {
        e["image"]: ("up-to-date" if e["image"] == "base" else "test", e["key"]) for e in plan2}
    fourth = lamina("-C", str(fresh), "build", "--push", "--json", *registry)
    assert fourth.code == 0, fourth.err + fourth.out
    tests = {(n["image"], t["name"]): t["passed"] for n in fourth.json()["nodes"]
             for t in n["tests"]}
    assert tests[("app", "data directory listed")] and tests[("leaf", "data directory listed")]
    # a third machine now finds all of it built and tested by these tests
    third_machine = tmp_path / "third"
    shutil.copytree(fresh, third_machine, ignore=shutil.ignore_patterns(".lamina"))
    plan4 = lamina("-C", str(third_machine), "plan", "--json", *against).json()
    assert {e["status"] for e in plan4} == {"up-to-date"}
