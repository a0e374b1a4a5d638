"""Keys see a checkout's modes as git keeps them: 0644, or 0755 when the owner may execute.

git records only those two modes for a regular file (``ce_permissions`` in git's object.h:
``((mode) & 0100) ? 0755 : 0644``) and none for directories, and a clone recreates the files
as 0666 or 0777 minus the umask (git's entry.c). A key computed from the exact mode would
differ between two clones of one commit; computed from git's mode it cannot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import TREES, CliResult

Lamina = Callable[..., CliResult]

FILES = "layers/tools/files"
EXECUTABLES = {f"{FILES}/bin/run-me", "layers/install/payload/tool.sh"}


def copy_with_modes(tmp: Path, name: str, file_mode: int, exe_mode: int,
                    dir_mode: int) -> Path:
    """The modes tree as a checkout with these modes would have it."""
    root = tmp / name
    shutil.copytree(TREES / "modes", root, symlinks=True,
                    ignore=shutil.ignore_patterns(".lamina"))
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in filenames:
            path = Path(dirpath) / entry
            if not path.is_symlink():
                rel = path.relative_to(root).as_posix()
                path.chmod(exe_mode if rel in EXECUTABLES else file_mode)
        for entry in dirnames:
            (Path(dirpath) / entry).chmod(dir_mode)
    return root


def keys(lamina: Lamina, root: Path) -> dict[str, str]:
    result = lamina("-C", str(root), "plan", "--json")
    assert result.code == 0, result.err
    return {node["image"]: node["key"] for node in result.json()}


def test_a_umask_0002_checkout_has_the_keys_of_a_umask_0022_one(
        lamina: Lamina, tmp_path: Path) -> None:
    plain = copy_with_modes(tmp_path, "umask-0022", 0o644, 0o755, 0o755)
    group = copy_with_modes(tmp_path, "umask-0002", 0o664, 0o775, 0o775)
    private = copy_with_modes(tmp_path, "umask-0077", 0o600, 0o700, 0o700)
    assert (group / FILES / "share/doc/readme.txt").stat().st_mode & 0o777 == 0o664
    assert keys(lamina, plain) == keys(lamina, group) == keys(lamina, private)


def test_the_owner_execute_bit_alone_decides_like_git(lamina: Lamina, tmp_path: Path) -> None:
    base = copy_with_modes(tmp_path, "base", 0o644, 0o755, 0o755)
    reference = keys(lamina, base)
    owner_only = copy_with_modes(tmp_path, "owner-only", 0o644, 0o744, 0o755)
    assert keys(lamina, owner_only) == reference  # git commits 0744 as 100755
    group_only = copy_with_modes(tmp_path, "group-only", 0o644, 0o654, 0o755)
    assert keys(lamina, group_only)["app"] != reference["app"]  # ... and 0654 as 100644
    made_executable = copy_with_modes(tmp_path, "chmod-x", 0o644, 0o755, 0o755)
    (made_executable / FILES / "share/doc/readme.txt").chmod(0o755)
    changed = keys(lamina, made_executable)
    assert changed["app"] != reference["app"] and changed["base"] == reference["base"]
    payload = copy_with_modes(tmp_path, "payload-x", 0o644, 0o755, 0o755)
    (payload / "layers/install/payload/data.txt").chmod(0o755)  # a script layer's input
    assert keys(lamina, payload)["app"] != reference["app"]


def test_a_named_pipe_in_a_layer_directory_is_refused_where_it_is_named(
        lamina: Lamina, tmp_path: Path) -> None:
    root = copy_with_modes(tmp_path, "fifo", 0o644, 0o755, 0o755)
    os.mkfifo(root / FILES / "share/pipe")
    result = lamina("-C", str(root), "plan")
    assert result.code == 2
    assert result.err == (f"lamina: error: {root}/layers/tools/layer.yaml:3: source: "
                          "'files/share/pipe' is a named pipe; expected regular files, "
                          "directories and symlinks only\n")
    os.unlink(root / FILES / "share/pipe")
    os.mkfifo(root / "layers/install/payload/pipe")
    result = lamina("-C", str(root), "plan")
    assert result.code == 2
    assert result.err == (f"lamina: error: {root}/layers/install/layer.yaml:4: inputs[0]: "
                          "'payload/pipe' is a named pipe; expected regular files, "
                          "directories and symlinks only\n")
