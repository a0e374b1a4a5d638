"""Scratch directories private to one run: unique, removed after use, swept if orphaned.

Two ``lamina build`` runs on one project must never share a build context or a staging
layout (one would delete or overwrite the other's). So each gets a directory with a unique
name, next to a lock file that its owner holds (``flock``) for as long as it uses it. The
owner removes both when done; a run that was killed cannot, so every new scratch directory
first sweeps siblings whose lock nobody holds any more (their owner is gone, since the kernel
drops a ``flock`` with its holder).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lamina.locks import try_flock

LOCK_SUFFIX = ".owner"


def sweep(parent: Path, prefix: str = "") -> None:
    """Remove scratch directories under ``parent`` (names starting with ``prefix``) whose
    owner is gone."""
    if not parent.is_dir():
        return
    for lock in parent.glob(f"{prefix}*{LOCK_SUFFIX}"):
        fd = try_flock(lock)
        if fd is None:
            continue  # its owner is alive
        try:
            shutil.rmtree(parent / lock.name.removesuffix(LOCK_SUFFIX), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
        finally:
            os.close(fd)


@contextlib.contextmanager
def owned_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A new empty directory ``parent/<prefix><unique>``, removed when the block ends."""
    parent.mkdir(parents=True, exist_ok=True)
    sweep(parent, prefix)
    fd, lock_name = tempfile.mkstemp(prefix=prefix, suffix=LOCK_SUFFIX, dir=parent)
    lock = Path(lock_name)
    directory = parent / lock.name.removesuffix(LOCK_SUFFIX)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        directory.mkdir()
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)
