"""Checkout modes as git keeps them: the only file modes that feed a key or reach a layer.

A checkout's modes are not content: git records a regular file as 100644 or 100755 and
nothing else, and a clone recreates it as 0666 or 0777 minus the cloning user's umask
(git's ``entry.c``: ``mode = (mode & 0100) ? 0777 : 0666``). Two clones of one commit under
``umask 0022`` and ``umask 0002`` therefore hold 0644/0755 and 0664/0775 files. If those modes
fed the content key, or reached the image through ``COPY``, the same commit would give two
keys and two digests. So lamina reduces every mode it reads from a recipe's directories the
way git does before storing a blob (``ce_permissions`` / ``create_ce_mode`` / ``canon_mode``
in git's ``object.h``): a regular file is 0644, or 0755 when its owner may execute it;
directories are 0755 (git keeps no directory modes at all); symlinks stay symlinks. A files
layer's ``mode:`` still overrides this in the image (``COPY --chmod``).

git tests only the owner's execute bit (``mode & 0100``), and so does lamina: a file that git
would commit as 100644 gets the same key from the working tree as from any clone of it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from lamina.errors import ToolError

FILE = 0o644
EXECUTABLE = 0o755
DIRECTORY = 0o755


class UnsupportedEntry(ToolError):
    """An entry git could not hold either (a FIFO, a socket, a device node)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path}: {kind}; a layer directory may hold regular files, "
                         "directories and symlinks only")
        self.path = path
        self.kind = kind


def file_mode(st_mode: int) -> int:
    """The permission bits git would give a regular file of mode ``st_mode``."""
    return EXECUTABLE if st_mode & stat.S_IXUSR else FILE


def describe(path: Path) -> str:
    """``f<mode>``, ``d`` or ``l:<target>`` for ``path`` (not followed): what a key hashes
    besides a file's content. Other kinds of entry (FIFOs, sockets, devices) are refused."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "l:" + os.readlink(path)
    if stat.S_ISREG(info.st_mode):
        return f"f{file_mode(info.st_mode):o}"
    if stat.S_ISDIR(info.st_mode):
        return "d"
    raise UnsupportedEntry(path, _kind(info.st_mode))


def copy_tree(source: Path, target: Path) -> None:
    """Copy ``source`` (a file, a symlink or a directory tree) to ``target`` with git's
    modes: what reaches the build context, and from there the layer, whatever the umask of
    the checkout or of this run. Symlinks are copied as links, never followed; mtimes are
    kept (builds clamp them)."""
    kind = describe(source)  # refuses FIFOs and devices before anything is read
    if kind.startswith("l:"):
        os.symlink(os.readlink(source), target)
    elif kind.startswith("f"):
        shutil.copyfile(source, target, follow_symlinks=False)
        shutil.copystat(source, target, follow_symlinks=False)  # the mtime (and the mode...)
        os.chmod(target, int(kind[1:], 8))  # ...which git's mode replaces
    else:
        os.mkdir(target)
        for child in sorted(os.listdir(source)):
            copy_tree(source / child, target / child)
        os.chmod(target, DIRECTORY)
        info = source.stat()
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))


def _kind(st_mode: int) -> str:
    if stat.S_ISFIFO(st_mode):
        return "a named pipe"
    if stat.S_ISSOCK(st_mode):
        return "a socket"
    if stat.S_ISCHR(st_mode) or stat.S_ISBLK(st_mode):
        return "a device node"
    return "not a regular file"
