"""``lamina lock`` against a package index on 127.0.0.1, as a user points pip at one.

The index (tests/core/wheel_index.py) holds wheels the test crafts: a pure wheel, a
dependency chain whose middle has a newer release the top excludes, and a package with
manylinux wheels for x86_64 and aarch64 only. The expected lock lines are computed here
from the wheel files themselves (their sha256), not from anything lamina reports.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.core.conftest import CliResult
from tests.core.wheel_index import Wheel, WheelIndex, serve_index

PLATFORMS = ("amd64", "arm64", "ppc64le")
NATIVE_X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
NATIVE_ARM = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
WHEELS = [
    Wheel("tinypure", "1.2.0"),
    Wheel("chain-top", "2.0", requires=("chain-mid>=1,<2",)),
    Wheel("chain-mid", "1.5", requires=("chain-leaf",)),
    Wheel("chain-mid", "2.0"),  # newest, but chain-top excludes it
    Wheel("chain-leaf", "0.3"),
    Wheel("fastmath", "3.1", NATIVE_X86),
    Wheel("fastmath", "3.1", NATIVE_ARM),
    Wheel("needs-fastmath", "1.0", requires=("fastmath>=3",)),
]


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WheelIndex]:
    """The index, and pip told to use it and nothing else (no machine config, no wheel
    directories, short network timeouts), the way a user sets PIP_INDEX_URL."""
    with serve_index(tmp_path / "index") as served:
        served.publish(WHEELS)
        for name in list(os.environ):
            if name.startswith("PIP_"):
                monkeypatch.delenv(name)
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("PIP_INDEX_URL", served.url)
        monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "10")
        monkeypatch.setenv("PIP_RETRIES", "0")
        yield served


def pip_tree(root: Path, requirements: str) -> Path:
    """One image on all three platforms: an empty rootfs tarball and one pip layer whose
    lock is per architecture."""
    files = {
        "recipe.yaml": "platforms: [linux/amd64, linux/arm64, linux/ppc64le]\n"
                       "source_date_epoch: 1700000000\n",
        "images/py/image.yaml": "parent: scratch\nlayers: [root, deps]\n",
        "layers/root/layer.yaml": "kind: rootfs\ntarball: root.tar\n",
        "layers/deps/layer.yaml": "kind: pip\nrequirements: requirements.in\n"
                                  "lock: requirements.{arch}.lock\n",
        "layers/deps/requirements.in": requirements,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    tarfile.open(root / "layers/root/root.tar", "w").close()
    return root


def header(platform: str, requirements: str) -> str:
    digest = hashlib.sha256(requirements.encode()).hexdigest()[:16]
    return (f"# lamina lock for linux/{platform}, CPython 3.11, glibc 2.36; made by 'lamina "
            f"lock' from requirements.in (sha256 {digest}). Do not edit.\n")


def hashed(index: WheelIndex, wheel: Wheel) -> str:
    return f"{wheel.name}=={wheel.version} \\\n    --hash=sha256:{index.sha256(wheel.filename)}"


def test_lock_pins_hashes_per_platform_and_the_plan_excludes_a_missing_wheel(
        lamina: Callable[..., CliResult], index: WheelIndex, tmp_path: Path) -> None:
    requirements = "tinypure\nchain-top  # pulls chain-mid<2 and chain-leaf\nfastmath\n"
    root = pip_tree(tmp_path / "tree", requirements)
    first = lamina("-C", str(root), "lock")
    assert first.code == 0, first.err
    deps = root / "layers/deps"
    by_name = {(w.name, w.tag): w for w in WHEELS}
    chain_mid_1_5 = next(w for w in WHEELS if w.name == "chain-mid" and w.version == "1.5")
    common = [by_name["chain-leaf", "py3-none-any"], chain_mid_1_5,
              by_name["chain-top", "py3-none-any"]]
    for platform, native in (("amd64", NATIVE_X86), ("arm64", NATIVE_ARM)):
        wanted = [*common, by_name["fastmath", native], by_name["tinypure", "py3-none-any"]]
        assert (deps / f"requirements.{platform}.lock").read_text() == (
            header(platform, requirements)
            + "\n".join(hashed(index, w) for w in wanted) + "\n")
    # the two native wheels differ, so the two locks pin different files
    assert index.sha256(by_name["fastmath", NATIVE_X86].filename) != index.sha256(
        by_name["fastmath", NATIVE_ARM].filename)
    assert (deps / "requirements.ppc64le.lock").read_text() == (
        header("ppc64le", requirements)
        + "# lamina: no-wheel: fastmath==3.1 have no wheel for linux/ppc64le\n")
    rows = [line.split("│")[1:-1] for line in first.out.splitlines() if "│" in line]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["deps", "linux/amd64", "5", "requirements.amd64.lock", "updated"],
        ["deps", "linux/arm64", "5", "requirements.arm64.lock", "updated"],
        ["deps", "linux/ppc64le", "0", "requirements.ppc64le.lock",
         "no wheel: fastmath==3.1"]]

    plan = lamina("-C", str(root), "plan", "--json")
    assert plan.code == 0, plan.err
    verdicts = {entry["platform"]: (entry["status"], entry["reason"]) for entry in plan.json()}
    assert verdicts == {
        "linux/amd64": ("build", "not built yet"),
        "linux/arm64": ("build", "not built yet"),
        "linux/ppc64le": ("excluded", "layer deps: fastmath==3.1 have no wheel for "
                                      "linux/ppc64le (lamina lock)")}

    before = {p.name: p.read_bytes() for p in deps.glob("*.lock")}
    mtimes = {p.name: p.stat().st_mtime_ns for p in deps.glob("*.lock")}
    rerun = lamina("-C", str(root), "lock", "--json")
    assert rerun.code == 0, rerun.err
    assert rerun.json() == [
        {"layer": "deps", "platform": f"linux/{p}", "lock": str(deps / f"requirements.{p}.lock"),
         "packages": 0 if p == "ppc64le" else 5,
         "no_wheel": ["fastmath==3.1"] if p == "ppc64le" else [], "changed": False}
        for p in PLATFORMS]
    assert {p.name: p.read_bytes() for p in deps.glob("*.lock")} == before
    assert {p.name: p.stat().st_mtime_ns for p in deps.glob("*.lock")} == mtimes  # not rewritten


def test_a_dependency_without_a_wheel_is_named_through_the_request_that_needs_it(
        lamina: Callable[..., CliResult], index: WheelIndex, tmp_path: Path) -> None:
    """Locking only ppc64le (no other platform's lock to compare with): each request is
    resolved alone, and the one failing is named with the dependency that has no wheel."""
    requirements = "tinypure\nneeds-fastmath\n"
    root = pip_tree(tmp_path / "tree", requirements)
    result = lamina("-C", str(root), "lock", "--platform", "linux/ppc64le", "--json")
    assert result.code == 0, result.err
    lock = root / "layers/deps/requirements.ppc64le.lock"
    assert result.json() == [{"layer": "deps", "platform": "linux/ppc64le", "lock": str(lock),
                              "packages": 0, "no_wheel": ["needs-fastmath (needs fastmath)"],
                              "changed": True}]
    assert lock.read_text() == header("ppc64le", requirements) + (
        "# lamina: no-wheel: needs-fastmath (needs fastmath) have no wheel for linux/ppc64le\n")
    assert not (root / "layers/deps/requirements.amd64.lock").exists()


def test_locking_a_layer_that_is_not_a_pip_layer_names_the_lockable_ones(
        lamina: Callable[..., CliResult], tmp_path: Path) -> None:
    root = pip_tree(tmp_path / "tree", "tinypure\n")
    result = lamina("-C", str(root), "lock", "root")
    assert result.code == 2
    assert result.err == ("lamina: error: layer 'root' is not a pip layer with 'requirements' "
                          "(lockable: deps)\n")
