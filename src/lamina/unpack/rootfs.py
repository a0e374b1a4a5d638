"""The target of an unpack, reached only through descriptors: nothing a layer says can make
lamina write outside it.

Security: a layer is data from the network. Every entry name is normalised (``./`` prefixes and
empty or ``.`` components removed) and then refused with :class:`UnsafeEntryError` if it is
absolute or has a ``..`` component (GNU tar would strip a leading ``/``; DUCC's notes say reject,
and a layer written by buildah or docker never has one). Paths are walked one component at a
time with ``openat(O_NOFOLLOW|O_DIRECTORY)`` from a descriptor of the root, so no symlink is
ever followed: an entry *below* a symlink (``evil -> /tmp/x`` then ``evil/file``) is refused
whatever the symlink points at, because a layer made by diffing a real filesystem never has one
and the unpacker's literal-path merge could not reproduce it. Final components are created with
``O_EXCL|O_NOFOLLOW`` after removing what was there, so writing never goes through a symlink.
Hardlink targets are resolved the same way, so they cannot name a file outside the root.
Whiteouts only ever delete, so a whiteout below a symlink or missing directory is a no-op.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from lamina.errors import LaminaError


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
    """A root directory, reached only through descriptors opened without following symlinks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cached: tuple[tuple[str, ...], int] | None = None
        # intended (mode, mtime) of directories; applied at the very end so that a read-only
        # directory of a lower layer can still receive files from an upper one
        self.dir_meta: dict[tuple[str, ...], tuple[int, float]] = {}

    def close(self) -> None:
        self.forget()
        os.close(self.fd)

    def forget(self) -> None:
        """Drop the cached parent descriptor (after any removal it may have become stale)."""
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def _open_dir(self, parts: tuple[str, ...], *, create: bool, strict: bool, digest: str,
                  name: str) -> int | None:
        """A descriptor of directory ``parts``, never following a symlink. A missing component
        is created (``create``) or gives None; a symlink or non-directory on the way raises
        (``strict``) or gives None."""
        if self._cached is not None and self._cached[0] == parts:
            return os.dup(self._cached[1])
        fd = os.dup(self.fd)
        try:
            for index, comp in enumerate(parts):
                try:
                    nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                  | os.O_CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    if not strict:
                        os.close(fd)
                        return None
                    where = "/".join(parts[:index + 1])
                    kind = "a symlink" if stat.S_ISLNK(
                        os.stat(comp, dir_fd=fd, follow_symlinks=False).st_mode) \
                        else "not a directory"
                    error = UnsafeEntryError if kind == "a symlink" else LayerError
                    raise error(f"layer {digest}: entry {name!r}: parent {where!r} is {kind}; "
                                "refusing to write through it") from None
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        self.forget()
        self._cached = (parts, os.dup(fd))
        return fd

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
        try:
            st = os.stat(comp, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        self.forget()
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(comp, dir_fd=dfd)
            self.dir_meta = {k: v for k, v in self.dir_meta.items()
                             if k[:len(parts)] != parts}
        else:
            os.unlink(comp, dir_fd=dfd)

    def clear_children(self, dfd: int, parts: tuple[str, ...]) -> None:
        self.forget()
        for child in os.listdir(dfd):
            self.remove(dfd, child, (*parts, child))

    def finish(self) -> None:
        """Apply directory modes and times, deepest first, without following symlinks."""
        for parts in sorted(self.dir_meta, key=len, reverse=True):
            mode, mtime = self.dir_meta[parts]
            fd = self._open_dir(parts, create=False, strict=False, digest="", name="")
            if fd is None:
                continue
            try:
                os.chmod(fd, stat.S_IMODE(mode))
                set_mtime(fd, mtime)
            finally:
                os.close(fd)
        self.forget()
