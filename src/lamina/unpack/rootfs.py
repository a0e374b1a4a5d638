"""The target of an unpack, reached only through descriptors: nothing a layer says can make lamina
write outside it.

Security: a layer is data from the network. Every entry name is normalised (``./`` prefixes and
empty or ``.`` components removed) and then refused with :class:`UnsafeEntryError` if it is
absolute or has a ``..`` component (GNU tar would strip a leading ``/``; DUCC's notes say
reject, and a layer written by buildah or docker never has one). Paths are walked one component
at a time with ``openat(O_NOFOLLOW|O_DIRECTORY)`` from a descriptor of the root (or of a
directory below it that was opened the same way and is kept by :mod:`lamina.unpack.dirchain`),
so no symlink is ever followed: an entry *below* a symlink (``evil -> /tmp/x`` then
``evil/file``) is refused whatever the symlink points at, because a layer made by diffing a real
filesystem never has one and the unpacker's literal-path merge could not reproduce it. Final
components are created with ``O_EXCL|O_NOFOLLOW`` after removing what was there, so writing
never goes through a symlink. Hardlink targets are resolved the same way, so they cannot name a
file outside the root. Whiteouts only ever delete, so a whiteout below a symlink or missing
directory is a no-op.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from lamina.errors import LaminaError
from lamina.unpack.dirchain import DirChain, OpenCounter
from lamina.unpack.dirmeta import DirMeta
from lamina.unpack.removal import remove_entry


class LayerError(LaminaError):
    """A layer cannot be applied: unsupported compression, unreadable tar, impossible entry."""

    exit_code = 1


class UnsafeEntryError(LayerError):
    """A tar entry would write outside the root filesystem; the whole unpack is refused."""


def normalise(name: str, digest: str, what: str = "entry") -> list[str]:
    """Entry name → path components below the root; refuse absolute names and ``..``."""
    if "\x00" in name:
        raise LayerError(f"layer {digest}: {what} {name!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeEntryError(f"layer {digest}: {what} {name!r} is an absolute path; "
                               "refusing to unpack a layer that writes outside the image root")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeEntryError(f"layer {digest}: {what} {name!r} has a '..' component; "
                               "refusing to unpack a layer that writes outside the image root")
    return parts


def set_mtime(target: int | str, mtime: float, dir_fd: int | None = None) -> None:
    """Best effort: a time the filesystem cannot store is not worth failing an unpack."""
    try:
        if dir_fd is None:
            os.utime(target, (mtime, mtime))
        else:
            os.utime(target, (mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)
    except (OverflowError, ValueError, OSError):
        pass


class RootFS:
    """A root directory, reached only through descriptors opened without following symlinks.

    Directories are reached through one :class:`DirChain` (one ``openat`` per directory for a
    layer listed depth first, however deep), subtrees are removed by
    :func:`~lamina.unpack.removal.remove_entry` (a loop, no recursion), and the final directory
    modes and times are kept in a :class:`DirMeta` tree until :meth:`finish`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.counter = OpenCounter()
        self.dirs = DirChain(self.fd, self.counter)
        # intended (mode, mtime) of directories; applied at the very end so that a read-only
        # directory of a lower layer can still receive files from an upper one
        self.dir_meta = DirMeta()

    @property
    def dir_opens(self) -> int:
        return self.counter.opens

    def close(self) -> None:
        self.dirs.close()
        os.close(self.fd)

    def _open_dir(self, parts: tuple[str, ...], *, create: bool, strict: bool, digest: str,
                  name: str) -> int | None:
        """A descriptor of directory ``parts``, never following a symlink. A missing component
        is created (``create``) or gives None; a symlink or non-directory on the way raises
        (``strict``) or gives None."""
        fd, blocked = self.dirs.walk(parts, create=create)
        if blocked is None:
            return fd
        exc = blocked.error
        if isinstance(exc, FileNotFoundError):
            return None
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise exc
        if not strict:
            return None
        where = "/".join(parts[:blocked.index + 1])
        parent, _ = self.dirs.walk(parts[:blocked.index], create=False)
        try:
            is_link = parent is not None and stat.S_ISLNK(
                os.stat(parts[blocked.index], dir_fd=parent, follow_symlinks=False).st_mode)
        finally:
            if parent is not None:
                os.close(parent)
        kind = "a symlink" if is_link else "not a directory"
        error = UnsafeEntryError if is_link else LayerError
        raise error(f"layer {digest}: entry {name!r}: parent {where!r} is {kind}; "
                    "refusing to write through it")

    def parent(self, parts: list[str], digest: str, name: str) -> int:
        fd = self._open_dir(tuple(parts[:-1]), create=True, strict=True, digest=digest,
                            name=name)
        assert fd is not None
        return fd

    def existing_parent(self, parts: list[str], digest: str, name: str, *,
                        strict: bool = False) -> int | None:
        """The parent directory of ``parts`` if it exists as a real directory, else None (or an
        error for a symlink on the way, with ``strict``)."""
        return self._open_dir(tuple(parts[:-1]), create=False, strict=strict, digest=digest,
                              name=name)

    def remove(self, dfd: int, comp: str, parts: tuple[str, ...]) -> None:
        """Remove ``comp`` (any type, a directory with its subtree) from directory ``dfd``."""
        self.dirs.forget(parts)
        if remove_entry(dfd, comp, self.counter):
            self.dir_meta.discard(parts)

    def clear_children(self, dfd: int, parts: tuple[str, ...]) -> None:
        for child in os.listdir(dfd):
            self.remove(dfd, child, (*parts, child))

    def finish(self) -> None:
        """Apply directory modes and times, children before parents, without following
        symlinks."""
        for parts, (mode, mtime) in self.dir_meta.deepest_first():
            fd = self._open_dir(parts, create=False, strict=False, digest="", name="")
            if fd is None:
                continue
            try:
                os.chmod(fd, stat.S_IMODE(mode))
                set_mtime(fd, mtime)
            finally:
                os.close(fd)
