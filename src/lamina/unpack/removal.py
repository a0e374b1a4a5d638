"""Removing a directory tree of any depth: iteratively, through descriptors, never following a
symlink.

``shutil.rmtree`` recurses once per level (its descriptor-based ``_rmtree_safe_fd`` too), so a
whiteout or opaque directory 1200 levels deep, or a failed flat that deep, ended in
``RecursionError``. Here the walk is a loop with an explicit stack of the subdirectory names
still to visit on each level; directories are reached through :class:`~lamina.unpack.dirchain.
DirChain` (one ``openat`` per level on average, a bounded number of descriptors held), entries
are removed with ``unlinkat``/``rmdir`` relative to their parent's descriptor, and a symlink is
only ever unlinked, never entered: ``scandir`` reports it as what it is (``d_type``) and every
``openat`` carries ``O_NOFOLLOW``.

A directory the image made unwritable (mode 0555, 0000) is given ``u+rwx`` first (``fchmodat``
without following symlinks), so a leftover flat can always be removed by its owner.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from lamina.unpack.dirchain import DirChain, OpenCounter, open_dir

OWNER_ALL = stat.S_IRWXU


def _let_owner_in(name: str, dir_fd: int, mode: int) -> None:
    if mode & OWNER_ALL != OWNER_ALL:
        # a symlink raises here (Linux cannot chmod one): it is never entered anyway
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.chmod(name, stat.S_IMODE(mode) | OWNER_ALL, dir_fd=dir_fd,
                     follow_symlinks=False)


def _empty_of_files(fd: int) -> list[str]:
    """Unlink every non-directory in directory ``fd``; return its subdirectories' names."""
    subdirs: list[str] = []
    others: list[str] = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
                _let_owner_in(entry.name, fd, entry.stat(follow_symlinks=False).st_mode)
            else:
                others.append(entry.name)
    for name in others:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=fd)
    return subdirs


def remove_entry(dir_fd: int, name: str, counter: OpenCounter | None = None) -> bool:
    """Remove ``name`` from directory ``dir_fd`` whatever it is (a directory with its whole
    subtree); False if there was nothing to remove."""
    counter = counter or OpenCounter()
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(mode):
        os.unlink(name, dir_fd=dir_fd)
        return True
    _let_owner_in(name, dir_fd, mode)
    top = open_dir(name, dir_fd, counter)
    chain = DirChain(top, counter)
    try:
        path: list[str] = []
        pending = [_empty_of_files(top)]  # per level of `path`: subdirectories still to do
        while pending:
            if pending[-1]:
                path.append(pending[-1].pop())
                fd, _ = chain.walk(path, create=False)
                if fd is None:  # vanished or replaced meanwhile: unlink what is there
                    parent, _ = chain.walk(path[:-1], create=False)
                    if parent is not None:
                        with contextlib.suppress(OSError):
                            os.unlink(path[-1], dir_fd=parent)
                        os.close(parent)
                    path.pop()
                    continue
                try:
                    pending.append(_empty_of_files(fd))
                finally:
                    os.close(fd)
                continue
            pending.pop()
            if not path:
                break
            chain.forget(path)
            leaf = path.pop()
            parent, _ = chain.walk(path, create=False)
            if parent is not None:
                try:
                    os.rmdir(leaf, dir_fd=parent)
                finally:
                    os.close(parent)
    finally:
        chain.close()
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)
    return True


def remove_path(path: Path) -> None:
    """Remove ``path`` (a file, a symlink or a tree of any depth) if it exists; its parent
    directory is opened as given (the caller's own directory, e.g. ``R/.flat/cc``)."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        remove_entry(parent, path.name)
    finally:
        os.close(parent)
