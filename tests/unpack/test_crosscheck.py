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
from lamina.store import Store
from lamina.unpack.singularity import FHS_DIRS, SYMLINKS
from tests.core.conftest import TREES, CliResult, require_tool
from tests.exec.conftest import run_lamina

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


def test_the_build_stores_gzip_layers_and_records_no_ducc_warning(built_tiny: Path) -> None:
    """DUCC reads layers with gzip.NewReader (ducc/lib/image.go): every stored layer is gzip,
    by media type and by its bytes; the tiny tree makes no cross-layer hardlink."""
    store = Store(built_tiny / ".lamina/store")
    for name in ("base", "app", "leaf"):
        stored = store.get(f"{name}-amd64")
        assert stored is not None
        for layer in stored.layers:
            assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
            assert store.blob_path(str(layer["digest"])).read_bytes()[:2] == b"\x1f\x8b"
        assert store.read_record(name, "amd64")["warnings"] == []


def test_exec_runs_in_the_unpacked_leaf_with_the_image_env(
        lamina: Lamina, built_tiny: Path, tmp_path: Path) -> None:
    """apptainer's semantics on a buildah-built tree (the expectations and their apptainer
    sources are in tests/exec/): the image's ENV wins over the host's
    (action_script.sh restore_env), the working directory is the host's, not the leaf's
    WORKDIR (launcher_linux.go setProcessCwd), the root is read-only and a bind destination
    the image lacks is created (underlay_linux.go createLayer)."""
    require_tool("bwrap")
    out = tmp_path / "unpacked"
    assert lamina("-C", str(built_tiny), "unpack", "leaf", str(out)).code == 0
    image = str(out / "localhost/lamina/leaf:latest")

    cat = run_lamina("exec", image, "cat", "/opt/hello/greeting.txt")
    assert cat.code == 0, cat.err
    assert cat.out == "hello from lamina\n"

    env = run_lamina("exec", image, "sh", "-c", 'echo "$HELLO_DIR|$LANG|$(pwd)"',
                     env={"HELLO_DIR": "/from/host", "LANG": "de_CH.UTF-8"}, cwd=tmp_path)
    assert env.code == 0, env.err
    assert env.out == f"/opt/hello|C.UTF-8|{tmp_path}\n"  # ENV of app and base; host cwd

    assert run_lamina("exec", image, "sh", "-c", "exit 7").code == 7
    readonly = run_lamina("exec", image, "sh", "-c", "echo x > /opt/hello/new")
    assert readonly.code == 1 and not (Path(image) / "opt/hello/new").exists()
    # refused by the read-only root (not by a missing directory or a lamina error)
    assert readonly.err.splitlines()[-1] == "sh: can't create /opt/hello/new: Read-only file system"

    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("bound\n")
    for dest in ("/home", "/nowhere"):
        bound = run_lamina("exec", "--bind", f"{data}:{dest}", image, "cat",
                           f"{dest}/input.txt")
        assert (bound.code, bound.out) == (0, "bound\n"), bound.err
    assert not (Path(image) / "nowhere").exists()
