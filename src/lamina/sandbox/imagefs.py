"""Paths inside the unpacked image, resolved the way apptainer resolves them.

apptainer never follows an image's symlink out of the image: ``internal/pkg/util/fs/helper.go``
(``EvalRelative``, used by ``layer/underlay/underlay_linux.go`` for every mount destination and
by ``container_linux.go`` for ``/tmp``, ``/var/tmp`` and the working directory) walks the path
component by component below the image root, re-roots absolute link targets at the image root,
stops ``..`` at ``/`` and follows at most 40 links. Components that do not exist are kept as
written. Only ``lstat`` and ``readlink`` are used, so nothing of the image is opened, and the
result has no symlink left in it: bubblewrap is given that path, never one it would resolve.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_LINKS = 40  # helper.go: EvalRelative -> walkSymRelative(path, root, 40)
READ_CAP = 16 << 20  # /etc/passwd and /etc/group of an image are read whole, up to this


def components(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def host_path(rootfs: Path, path: str) -> Path:
    """The host path of an already resolved container path."""
    return rootfs.joinpath(*components(path)) if components(path) else rootfs


def lstat_in(rootfs: Path, path: str) -> os.stat_result | None:
    try:
        return os.lstat(host_path(rootfs, path))
    except (FileNotFoundError, NotADirectoryError):
        return None


def eval_relative(rootfs: Path, path: str) -> str:
    """``path`` with the image's symlinks resolved inside the image (absolute, normalised)."""
    todo = components(path)
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = "/" + "/".join([*done, part])
        st = lstat_in(rootfs, candidate)
        if st is not None and stat.S_ISLNK(st.st_mode) and links < MAX_LINKS:
            links += 1
            target = os.readlink(host_path(rootfs, candidate))
            if target.startswith("/"):
                done = []
            todo = components(target) + todo
            continue
        done.append(part)
    return "/" + "/".join(done)


def read_image_file(rootfs: Path, path: str) -> bytes | None:
    """A regular file of the image at a resolved path, or None (missing, not a file, too big)."""
    st = lstat_in(rootfs, path)
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > READ_CAP:
        return None
    fd = os.open(host_path(rootfs, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(READ_CAP)
