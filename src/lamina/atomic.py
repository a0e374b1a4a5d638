"""The one way lamina writes a file that another run may read: all of it, or nothing.

A reader (the plan of the next run, a publish, ``lamina diff``) must never see a half-written
record, a 0-byte SBOM left by a full disk, or one writer's bytes interleaved with another's.
So every such file is written to a temporary name that is unique to this write (``mkstemp`` in
the same directory, so the rename cannot cross filesystems), flushed to disk, and renamed over
the target; on any failure, ENOSPC and Ctrl-C included, the temporary file is removed and the
old content stays. Concurrent writers each rename a complete file; the last rename wins.

Callers that need read-modify-write consistency (the store's ``index.json``, records) hold the
store lock around the whole cycle; this module only makes each single write atomic.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

DEFAULT_MODE = 0o644


@contextlib.contextmanager
def replacing(path: Path, mode: int = DEFAULT_MODE) -> Iterator[IO[bytes]]:
    """A binary handle whose content replaces ``path`` when the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp",
                                    dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: Path, data: bytes, mode: int = DEFAULT_MODE) -> None:
    with replacing(path, mode) as handle:
        handle.write(data)


def write_text(path: Path, text: str, mode: int = DEFAULT_MODE) -> None:
    write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: Path, data: Any, *, indent: int | None = 2, sort_keys: bool = True,
               mode: int = DEFAULT_MODE) -> None:
    """JSON as lamina stores it: UTF-8, a final newline, keys sorted unless told otherwise."""
    if indent is None:
        text = json.dumps(data, separators=(",", ":"), sort_keys=sort_keys)
    else:
        text = json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n"
    write_text(path, text, mode)
