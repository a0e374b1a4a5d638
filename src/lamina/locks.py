"""File locks that hold across processes and are re-entrant across the threads of one.

``flock`` belongs to an open file description: two opens of one lock file in one process
conflict with each other (a thread would deadlock against its own process), and one open
shared by threads gives every thread the lock at once. So each lock path has exactly one
process-wide state: an ``RLock`` that orders this process's threads (and lets the holder take
the lock again, e.g. a store method called under :meth:`lamina.store.Store.locked`), and one
open file whose ``flock`` orders processes. The kernel drops a ``flock`` when its holder dies,
SIGKILL included, so a killed run never leaves a lock behind and waiting needs no bound.

The holder writes its pid into the lock file so that a waiter can say who it is waiting for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

WaitCallback = Callable[[int | None], None]


class FileLock:
    """One lock file; get instances with :func:`file_lock` (one per path per process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def acquire(self, on_wait: WaitCallback | None = None) -> None:
        """Take the lock; if another process holds it, call ``on_wait(pid)`` once, then wait."""
        self._rlock.acquire()
        try:
            if self._depth == 0:
                self._fd = self._take(on_wait)
            self._depth += 1
        except BaseException:
            self._rlock.release()
            raise

    def _take(self, on_wait: WaitCallback | None) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(_read_pid(fd))
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the only descriptor drops the flock
        self._rlock.release()

    @contextlib.contextmanager
    def held(self, on_wait: WaitCallback | None = None) -> Iterator[None]:
        self.acquire(on_wait)
        try:
            yield
        finally:
            self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


_LOCKS: dict[str, FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def file_lock(path: Path) -> FileLock:
    """The process-wide lock for ``path`` (the same object for every caller)."""
    key = os.path.abspath(path)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = FileLock(Path(key))
        return lock


def try_flock(path: Path) -> int | None:
    """A descriptor holding ``path``'s flock if nobody holds it now, else None (no wait).

    Used to tell whether the owner of a scratch directory is gone; the caller closes it.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd
