"""Descriptors of the directories on the current path, so that a deep tree costs one ``openat``
per directory instead of one per directory *per entry*.

Unpacking reaches every path through descriptors opened with ``O_NOFOLLOW|O_DIRECTORY`` one
component at a time (:mod:`lamina.unpack.rootfs` says why). Walking from the root for every tar
entry made a tree ``d`` directories deep cost ``d`` opens per entry, ``d²/2`` in all: a layer
2000 directories deep took two million ``openat`` calls. A layer lists its entries depth first
(tar, buildah, docker and umoci all write them so), so the next entry's directory is nearly
always the current one, a child of it or one of its ancestors. :class:`DirChain` therefore keeps
descriptors of the ancestors of the directory it opened last and opens a new one from its
nearest kept ancestor.

The descriptors kept are bounded (at most :data:`RECENT` + :data:`MAX_CHECKPOINTS`, far below
any file-descriptor limit): the last :data:`RECENT` levels of the path, and "checkpoints" at
every ``stride``-th level above them. Going up a path of any depth thus reopens at most
``stride`` levels every ``stride`` steps: one open per level on average, linear in depth.
Opening a path off the current one closes what is not its ancestor.

Whoever removes a directory must call :meth:`DirChain.forget` for it first: a kept descriptor
of a removed directory would otherwise stand for whatever is later created at its path.
:attr:`OpenCounter.opens` counts every directory ``openat``, so tests can assert linearity
structurally instead of by the clock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

RECENT = 64  # levels kept below the checkpoints
MAX_CHECKPOINTS = 192
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class OpenCounter:
    """How many directories were opened (``openat``) while unpacking."""

    opens: int = 0


def open_dir(name: str, dir_fd: int, counter: OpenCounter) -> int:
    """Open directory ``name`` below ``dir_fd`` without following a symlink."""
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    counter.opens += 1
    return fd


@dataclass(frozen=True)
class Blocked:
    """Why a walk stopped: the component at ``index`` is missing (``missing``), or is a
    symlink or not a directory (``error`` is the ``ELOOP``/``ENOTDIR`` from ``openat``)."""

    index: int
    error: OSError


class DirChain:
    """Directory descriptors along the most recently walked path below ``root_fd``."""

    def __init__(self, root_fd: int, counter: OpenCounter) -> None:
        self.root_fd = root_fd  # not owned: the caller closes it
        self.counter = counter
        self.chain: tuple[str, ...] = ()
        self.fds: dict[int, int] = {}  # depth -> descriptor of chain[:depth], depth >= 1

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        self.chain = ()

    def _drop_deeper(self, depth: int) -> None:
        for level in [d for d in self.fds if d > depth]:
            os.close(self.fds.pop(level))

    def _prune(self) -> None:
        """Keep the last RECENT levels and the checkpoints; close the rest."""
        depth = len(self.chain)
        stride = RECENT
        while depth // stride > MAX_CHECKPOINTS:
            stride *= 2
        for level in [d for d in self.fds
                      if d <= depth - RECENT and d % stride != 0]:
            os.close(self.fds.pop(level))

    def walk(self, parts: Sequence[str], *, create: bool) -> tuple[int | None, Blocked | None]:
        """A new descriptor (the caller's to close) of directory ``parts``, creating missing
        components (mode 0755) when ``create``; or None and where the walk was blocked."""
        target = tuple(parts)
        common = 0
        for mine, theirs in zip(self.chain, target, strict=False):
            if mine != theirs:
                break
            common += 1
        self._drop_deeper(common)
        base = max(self.fds, default=0)
        self.chain = target[:base]
        fd = self.fds[base] if base else self.root_fd
        for index in range(base, len(target)):
            comp = target[index]
            try:
                try:
                    child = open_dir(comp, fd, self.counter)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(comp, 0o755, dir_fd=fd)
                    child = open_dir(comp, fd, self.counter)
            except OSError as exc:
                self._prune()
                return None, Blocked(index, exc)
            self.fds[index + 1] = child
            self.chain = target[:index + 1]
            fd = child
        result = os.dup(fd)
        self._prune()
        return result, None

    def forget(self, parts: Sequence[str]) -> None:
        """``parts`` (and everything below it) is about to be removed or replaced."""
        prefix = tuple(parts)
        if not prefix or self.chain[:len(prefix)] != prefix:
            return
        self._drop_deeper(len(prefix) - 1)
        self.chain = self.chain[:len(prefix) - 1]
