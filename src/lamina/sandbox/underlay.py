"""bubblewrap mounts over a read-only image root, creating mount points the image lacks.

apptainer binds a destination the image does not have (``--bind X:/eos``, the host ``$HOME``,
the current directory) through its underlay, ``internal/pkg/util/fs/layout/layer/underlay/
underlay_linux.go``: the root becomes a tmpfs holding one bind per entry of the image root,
each parent of a missing destination becomes a tmpfs directory holding one bind per entry of
the image's directory (``duplicateDir``), the missing directories are made there, and the whole
is remounted read-only. :class:`Underlay` does the same with bubblewrap's own tmpfs root: image
entries ``--ro-bind`` (symlinks recreated with ``--symlink``), expanded directories ``--dir``,
then the mounts in apptainer's order, then ``--remount-ro /``. The unpacked directory on disk
is never written, and nothing is created on the host: a destination missing inside a host bind
(``$HOME``, a ``--bind`` source) is an error, as apptainer's mount of it fails.

Destinations are resolved first (:meth:`Underlay.locate`): through the image's symlinks as
``EvalRelative`` does, and through the mounts already placed, so bubblewrap is only ever given
paths without a symlink in them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import UsageError
from lamina.sandbox.imagefs import MAX_LINKS, components, host_path, lstat_in

BIND_KINDS = {"bind": "--bind", "ro-bind": "--ro-bind", "dev-bind": "--dev-bind"}
SCRATCH_KINDS = ("tmpfs", "dev", "mqueue")  # filesystems bubblewrap makes, writable for it


@dataclass(frozen=True)
class Mount:
    """One mount as apptainer lists it (``mount.Points``), in bubblewrap's terms."""
    kind: str          # bind ro-bind dev-bind tmpfs dev mqueue proc data
    dest: str          # container path, as apptainer names it
    source: str = ""   # host path (binds)
    what: str = ""     # which mount, for messages
    perms: int = 0o755  # tmpfs mode
    data: bytes = b""  # content of a "data" mount (a file lamina writes, e.g. /etc/passwd)


@dataclass(frozen=True)
class Location:
    """Where a container path lands, given the image and the mounts placed so far."""
    path: str             # container path, symlinks resolved
    where: str            # image | host | scratch | file
    exists: bool
    is_dir: bool = False
    host: str = ""        # the host path behind it (where == "host")
    missing_from: str = ""  # the first component that does not exist
    blocked: str = ""     # a component that is not a directory (or a link inside a host bind)


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts)


class Underlay:
    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.expanded: set[str] = {"/"}
        self.created: set[str] = set()
        self.placed: list[tuple[str, Mount]] = []
        self.ops: list[tuple[list[str], bytes | None]] = []

    def _cover(self, path: str) -> tuple[str, Mount] | None:
        """The mount that shows ``path``: the last placed one on it or on one of its parents."""
        for dest, mount in reversed(self.placed):
            if path == dest or path.startswith(dest.rstrip("/") + "/"):
                return dest, mount
        return None

    def locate(self, path: str) -> Location:
        todo, links = components(path), 0
        done: list[str] = []
        last = Location("/", "image", True, True)
        while todo:
            part = todo.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            cand = _join([*done, part])
            rest = "/".join(todo)
            full = cand + ("/" + rest if rest else "")
            cover = self._cover(cand)
            if cover is None or cover[1].kind in SCRATCH_KINDS:
                if cand in self.created or (cover is not None and cand == cover[0]):
                    done.append(part)
                    last = Location(cand, "scratch" if cover else "image", True, True)
                    continue
                if cover is not None:
                    return Location(full, "scratch", False, missing_from=cand)
                st = lstat_in(self.rootfs, cand)
                if st is None:
                    return Location(full, "image", False, missing_from=cand)
                if stat.S_ISLNK(st.st_mode) and links < MAX_LINKS:
                    links += 1
                    target = os.readlink(host_path(self.rootfs, cand))
                    done = [] if target.startswith("/") else done
                    todo = components(target) + todo
                    continue
                if todo and not stat.S_ISDIR(st.st_mode):
                    return Location(full, "image", False, blocked=cand)
                last = Location(cand, "image", True, stat.S_ISDIR(st.st_mode))
            else:
                dest, mount = cover
                if mount.kind == "data":
                    if todo or cand != dest:
                        return Location(full, "file", False, blocked=dest)
                    last = Location(cand, "file", True, False)
                    done.append(part)
                    continue
                source = mount.source if mount.kind != "proc" else "/proc"
                host = source + cand[len(dest):]
                try:
                    st = os.stat(host) if cand == dest else os.lstat(host)
                except (FileNotFoundError, NotADirectoryError):
                    return Location(full, "host", False, host=host, missing_from=cand)
                if stat.S_ISLNK(st.st_mode) or (todo and not stat.S_ISDIR(st.st_mode)):
                    return Location(full, "host", False, host=host, blocked=cand)
                last = Location(cand, "host", True, stat.S_ISDIR(st.st_mode), host=host)
            done.append(part)
        return last

    def add(self, mount: Mount) -> Location:
        """Place ``mount`` after those already placed; its destination made if missing."""
        loc = self.locate(mount.dest)
        if loc.path == "/":
            raise UsageError(f"{mount.what}: cannot mount over the container's root")
        wants_dir = (mount.kind in (*SCRATCH_KINDS, "proc")
                     or (mount.kind in BIND_KINDS and os.path.isdir(mount.source)))
        if loc.blocked and loc.where == "host":
            raise UsageError(f"{mount.what}: {mount.dest} goes through {loc.blocked}, a symlink "
                             "or file inside a host directory bound there")
        if loc.blocked:
            raise UsageError(f"{mount.what}: {loc.blocked} is not a directory in the container")
        if loc.exists and loc.is_dir != wants_dir:
            raise UsageError(f"{mount.what}: cannot mount a {'directory' if wants_dir else 'file'}"
                             f" on {loc.path}, a {'directory' if loc.is_dir else 'file'} in the "
                             "container")
        if not loc.exists:
            if loc.where in ("host", "file"):
                raise UsageError(f"{mount.what}: {mount.dest} does not exist in the host "
                                 f"directory bound there ({os.path.dirname(loc.host) or '/'}); "
                                 "lamina does not create mount points on the host")
            self._make_parents(loc)
        self.placed.append((loc.path, mount))
        self.ops.append(self._op(mount, loc.path))
        return loc

    def _make_parents(self, loc: Location) -> None:
        parts = components(loc.path)
        first = len(components(loc.missing_from))
        if loc.where == "image":  # the existing parents become tmpfs copies of themselves
            for i in range(first):
                self.expanded.add(_join(parts[:i]))
        for i in range(first, len(parts)):  # missing parents; bubblewrap makes the leaf
            path = _join(parts[:i])
            self.created.add(path)
            self.ops.append((["--perms", "0755", "--dir", path], None))

    @staticmethod
    def _op(mount: Mount, dest: str) -> tuple[list[str], bytes | None]:
        if mount.kind in BIND_KINDS:
            return [BIND_KINDS[mount.kind], mount.source, dest], None
        if mount.kind == "tmpfs":
            return ["--perms", f"{mount.perms:04o}", "--tmpfs", dest], None
        if mount.kind == "data":
            return ["--ro-bind-data", "{fd}", dest], mount.data
        return [f"--{mount.kind}", dest], None  # proc dev mqueue

    def _scaffold(self, directory: str, out: list[str]) -> None:
        """``directory`` (expanded) as tmpfs: each image entry bound or linked into it."""
        for name in sorted(os.listdir(host_path(self.rootfs, directory))):
            path = (directory.rstrip("/") + "/" + name)
            source = host_path(self.rootfs, path)
            st = os.lstat(source)
            if stat.S_ISLNK(st.st_mode):
                out += ["--symlink", os.readlink(source), path]
            elif stat.S_ISDIR(st.st_mode) and path in self.expanded:
                out += ["--perms", f"{stat.S_IMODE(st.st_mode):04o}", "--dir", path]
                self._scaffold(path, out)
            else:
                out += ["--ro-bind", str(source), path]

    def bwrap_args(self, data_fd: Callable[[bytes], int]) -> list[str]:
        """The mount arguments: scaffold, mounts in order, read-only root."""
        out: list[str] = []
        self._scaffold("/", out)
        for args, data in self.ops:
            out += [str(data_fd(data)) if a == "{fd}" and data is not None else a for a in args]
        return [*out, "--remount-ro", "/"]
