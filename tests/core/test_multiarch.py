"""Foreign platforms build through qemu-user binfmt and really run the target's binaries."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool


def test_arm64_build_runs_arm64_binaries_under_qemu(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    require_tool("umoci")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.fail("qemu-aarch64 binfmt is not registered; run scripts/setup")
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    result = lamina("-C", str(root), "build", "--platform", "linux/arm64", "--json")
    assert result.code == 0, result.out + result.err
    assert {(r["image"], r["outcome"]) for r in result.json()} == {
        ("base", "built"), ("app", "built"), ("leaf", "built")}
    store = root / ".lamina/store"
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{store}:leaf-arm64", str(bundle)],
                   check=True, capture_output=True)
    # The build step ran `uname -m` inside the image: under qemu it reports the target.
    assert (bundle / "rootfs/opt/hello/arch.txt").read_text() == "aarch64\n"
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{store}:leaf-arm64"],
        check=True, capture_output=True, text=True).stdout)
    assert config["architecture"] == "arm64"
    # Each platform is planned on its own: amd64 is still to build.
    plan = {(e["image"], e["platform"]): e["status"]
            for e in lamina("-C", str(root), "plan", "--json").json()}
    assert plan[("leaf", "linux/arm64")] == "up-to-date"
    assert plan[("leaf", "linux/amd64")] == "build"
