"""The shipped os-base for arm64 under qemu, on its own: the suite's longest test (debootstrap's
second stage runs emulated), in its own file so that a second test worker runs the rest of
the shipped tree's tests beside it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.core.conftest import require_tool
from tests.hep.test_hep_tree import REPO, SITE_CA, _lamina
from tests.publish.conftest import TlsRegistry

pytestmark = pytest.mark.slow  # debootstrap's second stage under qemu: minutes


def test_arm64_os_base_plus_a_pip_layer_runs_under_qemu_and_os_base_publishes_multiarch(
        tmp_path: Path, tls_registry: TlsRegistry) -> None:
    """The shipped os-base for amd64 and arm64 (debootstrap's second stage under qemu), on
    top for arm64 Python from Debian plus one hashed pip layer of the shipped tree
    (analysis-deps); then os-base published to a real TLS registry as a two-platform index."""
    require_tool("buildah")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.fail("qemu-aarch64 binfmt is not registered; run scripts/setup")
    root = tmp_path / "tree"
    (root / "images").mkdir(parents=True)
    shutil.copytree(REPO / "layers", root / "layers")
    shutil.copytree(REPO / "images/os-base", root / "images/os-base")
    (root / "recipe.yaml").write_text("name: arm64-check\nplatforms: [linux/amd64, linux/arm64]\n"
                                      "source_date_epoch: 1700000000\n")
    (root / "images/py-tools").mkdir()
    (root / "images/py-tools/image.yaml").write_text(
        "parent: os-base\nlayers: [python3, analysis-deps]\nplatforms: [linux/arm64]\n"
        "tests:\n  - name: runs as aarch64\n"
        "    run: test \"$(python3 -c 'import platform; print(platform.machine())')\" = aarch64\n")
    code, out = _lamina("-C", str(root), "build", "--json", "--ca-bundle", str(SITE_CA))
    results = json.loads(out)
    assert code == 0, [r["error"] for r in results]
    assert {(r["image"], r["platform"], r["outcome"]) for r in results} == {
        ("os-base", "linux/amd64", "built"), ("os-base", "linux/arm64", "built"),
        ("py-tools", "linux/amd64", "excluded"), ("py-tools", "linux/arm64", "built")}
    tests = {t["name"]: t["passed"] for r in results for t in r["tests"]
             if r["platform"] == "linux/arm64"}
    assert tests["runs as aarch64"] and tests["import tabulate"]
    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{root / '.lamina/store'}:py-tools-arm64"],
        check=True, capture_output=True, text=True).stdout)
    assert config["architecture"] == "arm64"

    code, _ = _lamina("-C", str(root), "publish", "os-base", "--to", f"{tls_registry.host}/hep",
                      "--tag", "v1", "--cert-dir", str(tls_registry.cert_dir), "--authfile",
                      str(tls_registry.authfile))
    assert code == 0
    index = tls_registry.get("/v2/hep/os-base/manifests/v1",
                             "application/vnd.oci.image.index.v1+json").json()
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == [
        "amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        assert tls_registry.get(f"/v2/hep/os-base/manifests/v1-{arch}",
                                "application/vnd.oci.image.manifest.v1+json").status_code == 200
