"""Same inputs, same digests; and the site CA is used by the build but never stored."""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool

Lamina = Callable[..., CliResult]


def manifest_digests(store: Path) -> dict[str, str]:
    index = json.loads((store / "index.json").read_text())
    return {d["annotations"]["org.opencontainers.image.ref.name"]: d["digest"]
            for d in index["manifests"]}


def test_two_clean_builds_give_identical_manifest_digests(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    root = tree("tiny")
    first, second = tmp_path / "store-1", tmp_path / "store-2"
    assert lamina("-C", str(root), "build", "--store", str(first)).code == 0
    assert lamina("-C", str(root), "build", "--store", str(second)).code == 0
    a, b = manifest_digests(first), manifest_digests(second)
    assert set(a) == {"base-amd64", "app-amd64", "leaf-amd64"}
    assert a == b


def test_ca_bundle_is_mounted_for_builds_and_appears_in_no_layer(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    root = tree("ca")
    marker = f"LAMINA-SITE-CA-{secrets.token_hex(16)}"
    bundle = tmp_path / "site-ca.pem"
    bundle.write_text(f"-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n")
    result = lamina("-C", str(root), "build", "--ca-bundle", str(bundle))
    assert result.code == 0, result.out + result.err
    store = root / ".lamina/store"
    blobs = list((store / "blobs/sha256").iterdir())
    assert blobs
    for blob in blobs:
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert marker.encode() not in data, f"CA bundle content found in {blob.name}"
    for log in (root / ".lamina/logs").iterdir():
        assert marker not in log.read_text(errors="replace")
    assert marker not in result.out + result.err
    # and the build without the CA fails at the step that needs it, as it would on a site
    # whose proxy needs the CA
    without = lamina("-C", str(root), "build", "--store", str(tmp_path / "s2"), "--json")
    assert without.code == 1
    fetcher = next(r for r in without.json() if r["image"] == "fetcher")
    assert fetcher["outcome"] == "failed" and "layer uses-ca" in fetcher["error"]
