"""The one resolver of paths a recipe names: nothing outside the project is read or written.

Every path in a layer definition (tarballs, ``files.source``, scripts and their inputs, pip
locks and requirements, read or written by ``lamina lock``) is relative to the layer's
directory, and each use goes through :func:`inside`: before ``{arch}`` is expanded (the text
itself: no absolute path, no ``..`` that climbs out, no NUL, no lone surrogate) and after,
on the real filesystem (symlinks resolved: a link inside the layer directory that points
out of it is an escape too). The wordings: ``'<path>' points outside the layer directory``
for an escape, ``'<path>' is an absolute path; expected a path inside the layer directory``
(each with ``for <platform>`` after an expanded template).

Symlinks made while assembling a root filesystem (``debs.symlinks``) are confined to that
root by :func:`place_link`: the link's parent is resolved inside the root the way the image
will see it (an absolute link in the extracted packages means the root's own ``/``), so no
link in a package can make lamina replace a file of the host. Only the link's *target*
text may be absolute, since it is read inside the image. Files lamina itself writes into or
removes from such a root (the scrub, the dpkg database) are found the same way, by
:func:`in_root`.

Entries inside a directory a recipe names are copied into the build context as they are
(symlinks stay symlinks, ``shutil.copytree(symlinks=True)``), so they are never followed on
the host; :func:`tree_problem` only refuses names that are not UTF-8, which no key or
Containerfile could carry.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from pathlib import Path, PurePosixPath

from lamina.yamlio import printable

MAX_LINK_HOPS = 40  # as Linux's own limit on symlinks in one lookup (ELOOP)


class PathRefused(Exception):
    """A path that may not be used; the message says why (without the path's location)."""


def shown(text: str) -> str:
    """``text`` for a one-line message: control characters escaped, long text shortened."""
    return printable(text)


def text_problem(text: str) -> str | None:
    """Why the path text itself is refused (before looking at the filesystem), or None."""
    if not text:
        return "must not be empty"
    if "\x00" in text:
        return "contains a NUL byte"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "is not valid UTF-8"
    if text.startswith("/"):
        return "absolute"
    depth = 0
    for part in PurePosixPath(text).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return "outside"
        elif part != ".":
            depth += 1
    return None


def refusal(text: str, reason: str, where: str, suffix: str) -> PathRefused:
    if reason == "outside":
        return PathRefused(f"'{shown(text)}'{suffix} points outside the {where}")
    if reason == "absolute":
        return PathRefused(f"'{shown(text)}'{suffix} is an absolute path; expected a path "
                           f"inside the {where}")
    return PathRefused(f"'{shown(text)}'{suffix} {reason}")


def inside(base: Path, text: str, *, expanded: str | None = None, platform: str | None = None,
           where: str = "layer directory") -> Path:
    """The real path ``text`` names under ``base``, symlinks resolved; it need not exist.

    ``expanded`` is the text after ``{arch}`` expansion for ``platform`` (checked too);
    messages show the recipe's own ``text`` and the platform.
    """
    suffix = f" for {platform}" if platform else ""
    for candidate, shown_suffix in ((text, ""), (expanded, suffix)):
        if candidate is None:
            continue
        reason = text_problem(candidate)
        if reason is not None:  # the template itself fails for every platform
            raise refusal(text, reason, where, shown_suffix)
    relative = expanded if expanded is not None else text
    try:
        root = base.resolve(strict=True)
        real = (root / relative).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else "symlink loop"
        raise PathRefused(f"cannot use '{shown(text)}'{suffix}: {detail}") from None
    if not real.is_relative_to(root):
        raise refusal(text, "outside", where, suffix)
    return real


def tree_problem(root: Path) -> str | None:
    """The first entry under directory ``root`` whose name or link target is not UTF-8."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if _not_utf8(name):
                return f"'{shown(rel)}' is not a UTF-8 file name"
            if os.path.islink(path) and _not_utf8(os.readlink(path)):
                return f"the symlink '{shown(rel)}' has a target that is not UTF-8"
    return None


def _not_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parent_in_root(root: Path, parts: list[str], create: bool = True) -> Path:
    """The directory ``parts`` names under ``root``, as seen from inside the root: symlinks
    on the way are followed with ``root`` as ``/`` and ``..`` stops at it; missing
    directories are created (mode 0755 whatever the umask), or with ``create=False``
    :class:`FileNotFoundError` is raised. Never leaves ``root``."""
    current = root
    pending = deque(parts)
    hops = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / part
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(candidate)
            os.chmod(candidate, 0o755)  # it ends up in the image: not the umask's mode
            current = candidate
            continue
        if stat.S_ISLNK(info.st_mode):
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise PathRefused("has too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            pending.extendleft(reversed(PurePosixPath(target).parts[
                1 if target.startswith("/") else 0:]))
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise PathRefused(f"needs '{shown(part)}' to be a directory, but the packages "
                              "have a file there")
        current = candidate
    return current


def in_root(root: Path, path: str) -> Path | None:
    """Where ``path`` (relative to the root filesystem ``root``, or absolute in it) is on the
    host, its directories resolved as the image will see them (:func:`_parent_in_root`);
    the last component is not followed. None when a directory on the way is missing."""
    parts = [p for p in PurePosixPath(path).parts if p != "/"]
    try:
        if not parts or parts[-1] in (".", ".."):
            return _parent_in_root(root.resolve(), parts, create=False)
        return _parent_in_root(root.resolve(), parts[:-1], create=False) / parts[-1]
    except FileNotFoundError:
        return None


def make_dirs(root: Path, path: str) -> Path:
    """The directory ``path`` names in the root filesystem ``root``, created (0755) where
    missing, its directories resolved as the image will see them; never outside ``root``."""
    return _parent_in_root(root.resolve(), [p for p in PurePosixPath(path).parts if p != "/"])


def place_link(root: Path, link: str, target: str) -> Path:
    """Create the symlink ``link`` → ``target`` in the root filesystem ``root``."""
    reason = text_problem(link)
    if reason is not None:
        raise refusal(link, reason, "root filesystem", "")
    if "\x00" in target:
        raise PathRefused(f"the target of '{shown(link)}' contains a NUL byte")
    parts: list[str] = []
    for part in PurePosixPath(link).parts:  # lexically: text_problem keeps ".." inside
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    if not parts:
        raise PathRefused(f"'{shown(link)}' names the root directory itself")
    parent = _parent_in_root(root.resolve(), parts[:-1])
    path = parent / parts[-1]
    if path.is_dir() and not path.is_symlink():
        raise PathRefused(f"'{shown(link)}' is a directory in the root filesystem")
    if os.path.lexists(path):
        path.unlink()
    path.symlink_to(target)
    return path
