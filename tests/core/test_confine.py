"""Nothing outside the project is read or written: every recipe path is confined.

Each escape gets its exact one-line message and exit 2, and a sentinel outside the project
shows nothing there was read into a layer, replaced, or written.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.confine import PathRefused, inside, place_link
from lamina.platforms import parse_platform
from lamina.recipe import load_recipe
from lamina.render import build_unit
from lamina.rootfs import prepare
from lamina.yamlio import printable
from tests.core.conftest import CliResult, require_tool

Lamina = Callable[..., CliResult]
SECRET = "host secret: must stay where it is\n"


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A host file outside every project of the test."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "sentinel"
    path.write_text(SECRET)
    return path


def untouched(sentinel: Path, project: Path) -> None:
    """The sentinel is the same regular file, and no project file holds its content."""
    assert not sentinel.is_symlink() and sentinel.read_text() == SECRET
    assert sorted(p.name for p in sentinel.parent.iterdir()) == [sentinel.name]
    for dirpath, _, filenames in os.walk(project):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                assert SECRET.encode() not in path.read_bytes(), path


def one_error(result: CliResult) -> str:
    assert result.code == 2, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def add_symlink_entry(root: Path, entry: str) -> int:
    """Add a ``debs.symlinks`` entry to the tiny tree's rootfs layer; returns its line."""
    layer = root / "layers/busybox-root/layer.yaml"
    lines = layer.read_text().splitlines()
    at = lines.index("  symlinks:") + 1
    lines.insert(at, f"    {entry}")
    layer.write_text("\n".join(lines) + "\n")
    return at + 1


@pytest.mark.parametrize(("entry", "key", "message"), [
    ("../../../outside/sentinel: busybox", "../../../outside/sentinel",
     "'../../../outside/sentinel' points outside the root filesystem"),
    ("bin/../../x: busybox", "bin/../../x", "'bin/../../x' points outside the root filesystem"),
    ("/etc/passwd: busybox", "/etc/passwd",
     "'/etc/passwd' is an absolute path; expected a path inside the root filesystem"),
])
def test_a_rootfs_symlink_outside_the_root_is_refused(
        lamina: Lamina, tree: Callable[[str], Path], sentinel: Path, entry: str, key: str,
        message: str) -> None:
    root = tree("tiny")
    line = add_symlink_entry(root, entry)
    for command in ("plan", "build"):
        error = one_error(lamina("-C", str(root), command))
        assert error == (f"lamina: error: {root.resolve()}/layers/busybox-root/layer.yaml:"
                         f"{line}: debs.symlinks.{key}: {message}")
    untouched(sentinel, root)


def test_a_rootfs_symlink_through_a_symlinked_parent_stays_in_the_root(
        tree: Callable[[str], Path], sentinel: Path, tmp_path: Path) -> None:
    """``escape`` → the host directory (an absolute target, fine inside the image), then
    ``escape/sentinel``: assembling the real root filesystem (Debian's busybox-static), the
    second link lands in the root, never on the host."""
    require_tool("apt-get")
    root = tree("tiny")
    outside = sentinel.parent
    add_symlink_entry(root, "escape/sentinel: busybox")
    add_symlink_entry(root, f"escape: {outside}")
    recipe = load_recipe(root)
    unit = build_unit(recipe, recipe.images["base"], parse_platform("linux/amd64"),
                      1_700_000_000, None)
    (request,) = unit.rootfs_requests
    tar_path = prepare(request, tmp_path / "cache", 1_700_000_000, tmp_path / "rootfs.log")
    untouched(sentinel, root)
    with tarfile.open(tar_path) as tar:
        escape = tar.getmember("escape")
        assert escape.issym() and escape.linkname == str(outside)
        inner = tar.getmember(f"{str(outside).lstrip('/')}/sentinel")
        assert inner.issym() and inner.linkname == "busybox"
        assert tar.getmember("bin/sh").linkname == "busybox"


def test_place_link_resolves_every_parent_inside_the_root(tmp_path: Path,
                                                          sentinel: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    os.symlink(str(sentinel.parent), root / "abs")  # absolute: the root's own /<outside>
    os.symlink("../../../outside", root / "usr/lib/rel")  # .. stops at the root
    os.symlink("loop", root / "loop")
    (root / "file").write_text("x")
    made = place_link(root, "abs/sentinel", "/bin/busybox")
    assert made == root / str(sentinel.parent).lstrip("/") / "sentinel"
    assert os.readlink(made) == "/bin/busybox"
    made = place_link(root, "usr/lib/rel/sentinel", "x")
    assert made == root / "outside/sentinel" and os.readlink(made) == "x"
    untouched(sentinel, tmp_path / "none")
    with pytest.raises(PathRefused, match="has too many levels of symbolic links"):
        place_link(root, "loop/x", "y")
    with pytest.raises(PathRefused, match="needs 'file' to be a directory"):
        place_link(root, "file/x", "y")
    with pytest.raises(PathRefused, match="'usr' is a directory in the root filesystem"):
        place_link(root, "usr", "y")
    with pytest.raises(PathRefused, match=r"'a/\.\.' names the root directory itself"):
        place_link(root, "a/..", "y")
    with pytest.raises(PathRefused, match="points outside the root filesystem"):
        place_link(root, "../x", "y")


def arch_tarball_tree(tree: Callable[[str], Path], tarball: str) -> tuple[Path, Path]:
    root = tree("tiny")
    layer = root / "layers/busybox-root/layer.yaml"
    layer.write_text(f"kind: rootfs\ntarball: \"{tarball}\"\n")
    return root, layer


@pytest.mark.parametrize("command", ["plan", "build"])
@pytest.mark.parametrize("absolute", [False, True])
def test_an_arch_tarball_outside_the_layer_is_refused(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path, command: str,
        absolute: bool) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    host_tar = outside / "rootfs-amd64.tar"
    host_tar.write_text(SECRET)
    if absolute:
        tarball = f"{outside}/rootfs-{{arch}}.tar"
        message = (f"'{printable(tarball)}' is an absolute path; expected a path inside the "
                   "layer directory")
    else:
        tarball = "../../../outside/rootfs-{arch}.tar"
        message = f"'{tarball}' points outside the layer directory"
    root, _ = arch_tarball_tree(tree, tarball)
    error = one_error(lamina("-C", str(root), command))
    assert error == (f"lamina: error: {root.resolve()}/layers/busybox-root/layer.yaml:2: "
                     f"tarball: {message}")
    untouched(host_tar, root)


def test_an_arch_tarball_symlinked_outside_is_refused_for_its_platform(
        lamina: Lamina, tree: Callable[[str], Path], sentinel: Path) -> None:
    root, layer = arch_tarball_tree(tree, "rootfs-{arch}.tar")
    os.symlink(sentinel, layer.parent / "rootfs-amd64.tar")
    error = one_error(lamina("-C", str(root), "build"))
    assert error == (f"lamina: error: {root.resolve()}/layers/busybox-root/layer.yaml:2: "
                     "tarball: 'rootfs-{arch}.tar' for linux/amd64 points outside the layer "
                     "directory")
    untouched(sentinel, root)


def pip_tree(tree: Callable[[str], Path], lock: str) -> tuple[Path, Path]:
    root = tree("tiny")
    layer_dir = root / "layers/py"
    layer_dir.mkdir()
    (layer_dir / "requirements.in").write_text("six\n")
    (layer_dir / "layer.yaml").write_text(
        f"kind: pip\nrequirements: requirements.in\nlock: \"{lock}\"\n")
    image = root / "images/leaf/image.yaml"
    image.write_text(image.read_text().replace("layers: [hello-script]",
                                               "layers: [hello-script, py]"))
    return root, layer_dir


@pytest.mark.parametrize(("lock", "message"), [
    ("../../../outside/sentinel", "'../../../outside/sentinel' points outside the layer "
                                  "directory"),
    ("../../../outside/sentinel-{arch}", "'../../../outside/sentinel-{arch}' points outside "
                                         "the layer directory"),
    ("locks/r-{arch}.lock", "'locks/r-{arch}.lock' for linux/amd64 points outside the layer "
                            "directory"),
    ("requirements-{arch}.lock", "'requirements-{arch}.lock' for linux/amd64 points outside "
                                 "the layer directory"),
])
def test_lamina_lock_never_writes_outside_the_layer(
        lamina: Lamina, tree: Callable[[str], Path], sentinel: Path, lock: str,
        message: str) -> None:
    root, layer_dir = pip_tree(tree, lock)
    os.symlink(sentinel.parent, layer_dir / "locks")  # a symlinked lock directory
    os.symlink(sentinel, layer_dir / "requirements-amd64.lock")  # a symlinked lock file
    error = one_error(lamina("-C", str(root), "lock", "--platform", "linux/amd64"))
    assert error == f"lamina: error: {root.resolve()}/layers/py/layer.yaml:3: lock: {message}"
    untouched(sentinel, root)


@pytest.mark.parametrize(("spec", "key", "message"), [
    ("script: build.sh\ninputs: [data]\n", "inputs[0]", "'data' points outside the layer "
                                                       "directory"),
    ("script: run.sh\n", "script", "'run.sh' points outside the layer directory"),
    ("script: build.sh\ninputs: [\"a\\0b\"]\n", "inputs[0]", "'a\\x00b' contains a NUL byte"),
    ("script: \"/etc/passwd\"\n", "script", "'/etc/passwd' is an absolute path; expected a "
                                            "path inside the layer directory"),
])
def test_script_and_inputs_through_symlinks_are_refused(
        lamina: Lamina, tree: Callable[[str], Path], sentinel: Path, spec: str, key: str,
        message: str) -> None:
    root = tree("tiny")
    layer_dir = root / "layers/hello-script"
    os.symlink(sentinel.parent, layer_dir / "data")
    os.symlink(sentinel, layer_dir / "run.sh")
    (layer_dir / "layer.yaml").write_text("kind: script\n" + spec)
    line = 1 + next(i for i, text in enumerate(spec.splitlines(), start=1)
                    if text.startswith(key.split("[")[0]))
    error = one_error(lamina("-C", str(root), "build"))
    assert error == (f"lamina: error: {root.resolve()}/layers/hello-script/layer.yaml:{line}: "
                     f"{key}: {message}")
    untouched(sentinel, root)


def test_files_source_symlinked_outside_and_non_utf8_names_are_refused(
        lamina: Lamina, tree: Callable[[str], Path], sentinel: Path) -> None:
    root = tree("tiny")
    files = root / "layers/hello-files/files"
    bad = os.fsencode(files) + b"/caf\xe9.txt"
    with open(bad, "wb") as handle:
        handle.write(b"latin-1 name\n")
    error = one_error(lamina("-C", str(root), "plan"))
    assert error == (f"lamina: error: {root.resolve()}/layers/hello-files/layer.yaml:3: "
                     "source: in 'files': 'caf\\udce9.txt' is not a UTF-8 file name")
    os.unlink(bad)
    os.rename(files, root / "files-moved")
    os.symlink(sentinel.parent, files)
    error = one_error(lamina("-C", str(root), "plan"))
    assert error == (f"lamina: error: {root.resolve()}/layers/hello-files/layer.yaml:3: "
                     "source: 'files' points outside the layer directory")
    untouched(sentinel, root)


def test_a_layer_directory_symlinked_outside_the_project_is_refused(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    root = tree("tiny")
    elsewhere = tmp_path / "elsewhere"
    os.rename(root / "layers/hello-script", elsewhere)
    os.symlink(elsewhere, root / "layers/hello-script")
    error = one_error(lamina("-C", str(root), "plan"))
    assert error == (f"lamina: error: {root.resolve()}/layers: 'layers/hello-script' points "
                     "outside the project")


def test_inside_resolves_and_refuses_in_one_wording(tmp_path: Path) -> None:
    (tmp_path / "layer/sub").mkdir(parents=True)
    os.symlink("sub", tmp_path / "layer/link")
    assert inside(tmp_path / "layer", "link/x") == (tmp_path / "layer/sub/x").resolve()
    assert inside(tmp_path / "layer", "sub/../x") == (tmp_path / "layer/x").resolve()
    with pytest.raises(PathRefused, match=r"^'x-\{arch\}' for linux/arm64 points outside the "
                                          "layer directory$"):
        inside(tmp_path / "layer", "x-{arch}", expanded="../x-arm64", platform="linux/arm64")
    with pytest.raises(PathRefused, match=r"^'' must not be empty$"):
        inside(tmp_path / "layer", "")
    with pytest.raises(PathRefused, match=r"^'\\ud800' is not valid UTF-8$"):
        inside(tmp_path / "layer", "\ud800")
