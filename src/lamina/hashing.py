"""Stable hashes of data and file trees, the raw material of content keys."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lamina.filemodes import describe


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

    Modes are git's (:mod:`lamina.filemodes`: 0644 or 0755, directories without a mode), the
    modes that reach the image, so a checkout's umask never changes a key; mtimes do not
    count either, because builds clamp them.
    """
    out: dict[str, str] = {}
    if not root.is_dir() or root.is_symlink():
        return {root.name: _entry(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames + [d for d in dirnames if (base / d).is_symlink()]):
            path = base / name
            out[path.relative_to(root).as_posix()] = _entry(path)
        for name in dirnames:
            path = base / name
            if not path.is_symlink():
                out[path.relative_to(root).as_posix() + "/"] = describe(path)
    return out


def _entry(path: Path) -> str:
    kind = describe(path)
    return f"{kind}:{sha256_file(path)}" if kind.startswith("f") else kind
