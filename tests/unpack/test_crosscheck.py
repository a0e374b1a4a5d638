"""The tiny tree built with real buildah: ``lamina unpack`` gives umoci's rootfs plus the
unpacker's additions, and ``lamina exec`` runs in it with the image's ENV."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.cli import main
from lamina.unpack.singularity import FHS_DIRS, SYMLINKS
from tests.core.conftest import TREES, CliResult, require_tool

Lamina = Callable[..., CliResult]


def tree_entries(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """path → (type, permission bits, content or link target), the root itself excluded."""
    out: dict[str, tuple[str, int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), b"")
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
            else:
                out[rel] = ("other", stat.S_IMODE(st.st_mode), b"")
    return out


@pytest.fixture(scope="module")
def built_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny tree, built once for this module."""
    require_tool("buildah")
    root = tmp_path_factory.mktemp("tiny") / "tiny"
    shutil.copytree(TREES / "tiny", root, symlinks=True,
                    ignore=shutil.ignore_patterns(".lamina"))
    assert main(["-C", str(root), "build", "leaf"]) == 0
    return root


def test_unpacked_leaf_matches_umoci_plus_singularity_metadata(
        lamina: Lamina, built_tiny: Path, tmp_path: Path) -> None:
    require_tool("umoci")
    out = tmp_path / "unpacked"
    result = lamina("-C", str(built_tiny), "unpack", "leaf", str(out), "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert data["public"] == "localhost/lamina/leaf:latest"
    flat = Path(data["flats"][0]["path"])
    assert os.readlink(out / "localhost/lamina/leaf:latest") == os.path.relpath(
        flat, out / "localhost/lamina")

    bundle = tmp_path / "bundle"
    store = built_tiny / ".lamina/store"
    umoci = ["umoci", "unpack", "--image", f"{store}:leaf-amd64", str(bundle)]
    if os.geteuid() != 0:
        umoci.insert(2, "--rootless")
    subprocess.run(umoci, check=True, capture_output=True)
    theirs = tree_entries(bundle / "rootfs")
    ours = tree_entries(flat)

    injected = {k for k in ours if k == ".singularity.d" or k.startswith(".singularity.d/")}
    injected |= {k for k in ours if k in SYMLINKS or k in FHS_DIRS} - set(theirs)
    assert injected >= {".singularity.d/env/10-docker2singularity.sh", "singularity"}
    assert {k: v for k, v in ours.items() if k not in injected} == theirs
    assert len(theirs) > 20  # a real tree was compared, not two empty ones


def test_exec_runs_in_the_unpacked_leaf_with_the_image_env(
        lamina: Lamina, built_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    require_tool("bwrap")
    out = tmp_path / "unpacked"
    assert lamina("-C", str(built_tiny), "unpack", "leaf", str(out)).code == 0
    image = str(out / "localhost/lamina/leaf:latest")
    monkeypatch.delenv("HELLO_DIR", raising=False)
    monkeypatch.delenv("LANG", raising=False)

    cat = lamina("exec", image, "--", "cat", "/opt/hello/greeting.txt")
    assert cat.code == 0, cat.err
    assert cat.out == "hello from lamina\n"

    env = lamina("exec", image, "--", "sh", "-c", 'echo "$HELLO_DIR|$LANG|$(pwd)"')
    assert env.code == 0, env.err
    assert env.out == "/opt/hello|C.UTF-8|/opt/hello\n"  # ENV of app and base; leaf's WORKDIR

    monkeypatch.setenv("HELLO_DIR", "/from/host")  # as with singularity, a host value wins
    assert lamina("exec", image, "--", "sh", "-c", "echo $HELLO_DIR").out == "/from/host\n"
    clean = lamina("exec", image, "--cleanenv", "--", "sh", "-c", "echo $HELLO_DIR")
    assert clean.out == "/opt/hello\n"

    assert lamina("exec", image, "--", "sh", "-c", "exit 7").code == 7
    readonly = lamina("exec", image, "--", "sh", "-c", "echo x > /opt/hello/new")
    assert readonly.code != 0 and not (Path(image) / "opt/hello/new").exists()

    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("bound\n")
    bound = lamina("exec", "--bind", f"{data}:/home", image, "--", "cat", "/home/input.txt")
    assert bound.code == 0, bound.err
    assert bound.out == "bound\n"
    missing = lamina("exec", "--bind", f"{data}:/nowhere", image, "--", "true")
    assert missing.code == 2 and "does not exist in the image" in missing.err
