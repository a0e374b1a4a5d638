"""Publishing to a real registry over TLS with htpasswd: per-arch tags, then the index."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool
from tests.publish import oci_referrers_reader as oci
from tests.publish.conftest import TlsRegistry

INDEX = "application/vnd.oci.image.index.v1+json"


def test_publish_multiarch_index_and_rerun_uploads_nothing(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry, tmp_path: Path) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    require_tool("umoci")
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    image_file = root / "images/leaf/image.yaml"
    image_file.write_text(image_file.read_text() + "jupyterhub:\n  display_name: Tiny leaf\n"
                          "  default: true\n")
    target = f"{tls_registry.host}/hep"
    publish = ["-C", str(root), "publish", "leaf", "--to", target, "--tag", "v1.0",
               "--cert-dir", str(tls_registry.cert_dir), "--authfile",
               str(tls_registry.authfile), "--json"]

    # Nothing built yet: publishing refuses, nothing is pushed.
    refused = lamina(*publish)
    assert refused.code == 1
    assert "not publishable" in refused.json()[0]["error"]
    assert tls_registry.blob_uploads() == 0

    assert lamina("-C", str(root), "build").code == 0
    first = lamina(*publish)
    assert first.code == 0, first.out + first.err
    pushed = first.json()[0]
    refs = {t["reference"]: t["uploaded"] for t in pushed["tags"]}
    assert refs == {f"{target}/leaf:v1.0-amd64": True, f"{target}/leaf:v1.0-arm64": True,
                    f"{target}/leaf:v1.0": True}
    uploads = tls_registry.blob_uploads()
    assert uploads > 0

    raw = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir",
                          str(tls_registry.cert_dir), "--authfile", str(tls_registry.authfile),
                          f"docker://{target}/leaf:v1.0"],
                         check=True, capture_output=True, text=True).stdout
    index = json.loads(raw)
    assert index["mediaType"] == INDEX
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    assert index["annotations"]["org.opencontainers.image.version"] == "v1.0"
    for manifest in index["manifests"]:
        child = tls_registry.get(f"/v2/hep/leaf/manifests/{manifest['digest']}",
                                 "application/vnd.oci.image.manifest.v1+json").json()
        assert child["annotations"]["dev.lamina.key"].startswith("sha256:")
        assert all(layer["mediaType"].endswith("tar+gzip") for layer in child["layers"])
    arm = tls_registry.get("/v2/hep/leaf/manifests/v1.0-arm64",
                           "application/vnd.oci.image.manifest.v1+json")
    assert arm.status_code == 200

    # The package manifest and SBOM are attached to each per-arch image as an OCI 1.1
    # referrer, found through the referrers tag schema on a registry without the API.
    arm_digest = arm.headers["Docker-Content-Digest"]
    reader = oci.Registry(f"https://{tls_registry.host}", str(tls_registry.cert_dir / "ca.crt"),
                          (tls_registry.username, tls_registry.password))
    listed, how = oci.list_referrers(reader, "hep/leaf", arm_digest,
                                     "application/vnd.dev.lamina.report.v1")
    assert how == "tag" and len(listed) == 1
    report, _, _ = oci.manifest(reader, "hep/leaf", listed[0]["digest"])
    assert report["subject"]["digest"] == arm_digest
    by_type = {layer["mediaType"]: layer["digest"] for layer in report["layers"]}
    sbom = json.loads(oci.blob(reader, "hep/leaf", by_type["application/vnd.cyclonedx+json"]))
    assert sbom["bomFormat"] == "CycloneDX"
    assert sbom["metadata"]["component"]["version"] == arm_digest
    packages = json.loads(oci.blob(reader, "hep/leaf",
                                   by_type["application/vnd.dev.lamina.packages.v1+json"]))
    assert packages["platform"] == "linux/arm64"

    # umoci reads the store after build + publish: every ref resolves to exactly one image
    # (umoci's "tag is ambiguous" is a ref resolving to several, oci/casext/refname.go), can
    # be unpacked, and no blob is left that no ref reaches (umoci gc removes nothing).
    store = root / ".lamina/store"
    refs = subprocess.run(["umoci", "ls", "--layout", str(store)], check=True,
                          capture_output=True, text=True, timeout=60).stdout.split()
    # built nodes, and for the published leaf its key-tag and release copies; no index ref
    assert sorted(refs) == sorted(
        [f"{image}-{arch}" for image in ("base", "app", "leaf") for arch in ("amd64", "arm64")]
        + [f"leaf-{arch}-{copy}" for arch in ("amd64", "arm64") for copy in ("key", "release")])
    for ref in refs:
        stat = subprocess.run(["umoci", "stat", "--image", f"{store}:{ref}"],
                              capture_output=True, text=True, timeout=60)
        assert stat.returncode == 0, (ref, stat.stderr)
    for ref in ("leaf-arm64-release", "leaf-amd64-key", "base-amd64"):
        unpacked = subprocess.run(["umoci", "unpack", "--image", f"{store}:{ref}",
                                   str(tmp_path / f"umoci-{ref}")],
                                  capture_output=True, text=True, timeout=120)
        assert unpacked.returncode == 0, (ref, unpacked.stderr)
    copy = tmp_path / "store-copy"
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("lamina"))
    blobs = sorted(p.name for p in (copy / "blobs/sha256").iterdir())
    subprocess.run(["umoci", "gc", "--layout", str(copy)], check=True, capture_output=True,
                   timeout=60)
    assert sorted(p.name for p in (copy / "blobs/sha256").iterdir()) == blobs
    assert hashlib.sha256(b"{}").hexdigest() not in blobs

    # The arm64 image pulled back from the registry runs under qemu.
    pulled = tmp_path / "pulled"
    subprocess.run(["skopeo", "copy", "--src-cert-dir", str(tls_registry.cert_dir),
                    "--authfile", str(tls_registry.authfile),
                    f"docker://{target}/leaf:v1.0-arm64", f"oci:{pulled}:leaf"],
                   check=True, capture_output=True)
    subprocess.run(["umoci", "unpack", "--image", f"{pulled}:leaf", str(tmp_path / "b")],
                   check=True, capture_output=True)
    uname = subprocess.run(["chroot", str(tmp_path / "b/rootfs"), "/bin/uname", "-m"],
                           check=True, capture_output=True, text=True).stdout
    assert uname.strip() == "aarch64"

    # A rerun compares digests and uploads nothing.
    again = lamina(*publish)
    assert again.code == 0
    assert not any(t["uploaded"] for t in again.json()[0]["tags"])
    assert tls_registry.blob_uploads() == uploads

    # JupyterHub values pin the published index by digest, and it exists in the registry.
    values = lamina("-C", str(root), "jupyterhub")
    assert values.code == 0, values.err
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(values.out)
    image_ref = data["singleuser"]["profileList"][0]["kubespawner_override"]["image"]
    assert image_ref == f"{target}/leaf@{pushed['index_digest']}"
    assert data["singleuser"]["profileList"][0]["default"] is True
    digest = image_ref.split("@")[1]
    assert tls_registry.get(f"/v2/hep/leaf/manifests/{digest}", INDEX).status_code == 200


def test_wrong_password_is_one_line_without_the_secret(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry, tmp_path: Path) -> None:
    root = tree("tiny")
    assert lamina("-C", str(root), "build", "base").code == 0
    bad = tmp_path / "bad-auth.json"
    import base64

    secret = "wrong-Pa55word-xyz"
    bad.write_text(json.dumps({"auths": {tls_registry.host: {
        "auth": base64.b64encode(f"ci:{secret}".encode()).decode()}}}))
    result = lamina("-C", str(root), "publish", "base", "--to", f"{tls_registry.host}/hep",
                    "--tag", "v1", "--cert-dir", str(tls_registry.cert_dir), "--authfile",
                    str(bad))
    assert result.code == 1
    assert secret not in result.out + result.err
    # one line: where, what was refused, and how to give credentials
    assert re.fullmatch(
        rf"lamina: error: {re.escape(tls_registry.host)}: hep/base:lamina-[0-9a-f]{{40}}: "
        r"unauthorized \(set LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables, or "
        r"--authfile\)\n", result.err), result.err


def test_credentials_from_gitlab_ci_variables(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tree("tiny")
    assert lamina("-C", str(root), "build", "base").code == 0
    monkeypatch.setenv("HOME", str(root))  # no personal auth file can help
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root))
    args = ["-C", str(root), "publish", "base", "--to", f"{tls_registry.host}/hep", "--tag",
            "v3", "--cert-dir", str(tls_registry.cert_dir)]
    without = lamina(*args)
    assert without.code == 1 and "unauthorized" in (without.out + without.err).lower()
    monkeypatch.setenv("CI_REGISTRY", tls_registry.host)
    monkeypatch.setenv("CI_REGISTRY_USER", tls_registry.username)
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", tls_registry.password)
    with_ci = lamina(*args)
    assert with_ci.code == 0, with_ci.out + with_ci.err
    assert tls_registry.password not in with_ci.out + with_ci.err
    assert tls_registry.get("/v2/hep/base/manifests/v3-amd64",
                            "application/vnd.oci.image.manifest.v1+json").status_code == 200
