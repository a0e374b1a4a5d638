"""Indexes: one flat per platform, .multiarch links, aliases, and --platform."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult
from tests.unpack.oci import INDEX, Layout, f, gz, tar_bytes

Lamina = Callable[..., CliResult]


def make_index(root: Path) -> dict[str, str]:
    layout = Layout(root)
    amd = layout.image([gz(tar_bytes([f("arch", "amd64")]))])
    arm = layout.image([gz(tar_bytes([f("arch", "arm64")]))], arch="arm64", variant="v8")
    attestation = layout.image([gz(tar_bytes([f("sbom.json", "{}")]))], arch="unknown")
    digest, size = layout.index([
        (amd[0], amd[1], {"os": "linux", "architecture": "amd64"}),
        (arm[0], arm[1], {"os": "linux", "architecture": "arm64", "variant": "v8"}),
        (attestation[0], attestation[1], {"os": "unknown", "architecture": "unknown"})])
    layout.tag("multi", digest, size, INDEX)
    return {"amd64": amd[2], "arm64:v8": arm[2], "unknown": attestation[2]}


def flat_rel(config: str) -> str:
    hexpart = config.split(":")[1]
    return f".flat/{hexpart[:2]}/{hexpart}"


def test_index_unpacks_every_platform_into_multiarch(lamina: Lamina, tmp_path: Path) -> None:
    configs = make_index(tmp_path / "layout")
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out),
                    "--name", "registry.example.org/hep/analysis:v1", "--json")
    assert result.code == 0, result.err
    assert sorted(f["platform"] for f in result.json()["flats"]) == ["amd64", "arm64:v8"]
    assert not (out / flat_rel(configs["unknown"])).exists()  # attestation dropped
    for arch in ("amd64", "arm64:v8"):
        link = out / ".multiarch" / arch / "registry.example.org/hep/analysis:v1"
        assert os.readlink(link) == "../../../../" + flat_rel(configs[arch])
        assert (link / "arch").read_text() == arch.split(":")[0]
    assert os.readlink(out / ".multiarch/x86_64") == "amd64"
    assert os.readlink(out / ".multiarch/aarch64") == "arm64:v8"
    assert os.readlink(out / ".multiarch/arm64") == "arm64:v8"
    public = out / "registry.example.org/hep/analysis:v1"
    machine = platform.machine()
    assert os.readlink(public) == f"../../.multiarch/{machine}/registry.example.org/hep/analysis:v1"
    assert (public / "arch").read_text() == {"x86_64": "amd64", "aarch64": "arm64"}[machine]


def test_platform_option_unpacks_one_and_links_the_public_path_to_it(
        lamina: Lamina, tmp_path: Path) -> None:
    configs = make_index(tmp_path / "layout")
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out), "--platform",
                    "linux/arm64", "--name", "registry.example.org/hep/analysis:v1", "--json")
    assert result.code == 0, result.err
    assert [f["platform"] for f in result.json()["flats"]] == ["arm64:v8"]
    assert not (out / flat_rel(configs["amd64"])).exists()
    public = out / "registry.example.org/hep/analysis:v1"
    assert os.readlink(public) == "../../" + flat_rel(configs["arm64:v8"])
    assert (public / "arch").read_text() == "arm64"

    missing = lamina("unpack", f"oci:{tmp_path / 'layout'}:multi", str(out), "--platform",
                     "linux/ppc64le")
    assert missing.code == 2
    assert "has no linux/ppc64le image (it has: amd64, arm64:v8)" in missing.err
