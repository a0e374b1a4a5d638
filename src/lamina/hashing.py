"""Stable hashes of data and file trees, the raw material of content keys."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_data(data: Any) -> str:
    return sha256_bytes(canonical_json(data))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_fingerprint(root: Path) -> dict[str, str]:
    """Every entry under ``root`` → a hash of its type, mode and content (or link target).

    Modes matter because they end up in the image; mtimes do not, because builds clamp them.
    """
    out: dict[str, str] = {}
    if root.is_file():
        return {root.name: f"f{stat.S_IMODE(root.stat().st_mode):o}:{sha256_file(root)}"}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            path = base / name
            rel = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                out[rel] = "l:" + os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                out[rel] = f"f{stat.S_IMODE(info.st_mode):o}:{sha256_file(path)}"
        for name in dirnames:
            path = base / name
            if not path.is_symlink():
                rel = path.relative_to(root).as_posix()
                out[rel + "/"] = f"d{stat.S_IMODE(path.stat().st_mode):o}"
    return out
