"""Layer hygiene: what must never ship in a layer, checked on the layer bytes themselves.

Apt lists, pip caches, logs and timestamp-based ``.pyc`` files make layers bigger, differ on
every rebuild (so registries and CVMFS cannot deduplicate them) and leak build-time state.
Each layer kind cleans up after itself; this check proves it on what was actually stored, and
a build whose own layers carry such files fails with the first offending paths named.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import ToolError
from lamina.pipcache import MOUNT as PIP_CACHE_MOUNT

_FORBIDDEN = [
    (re.compile(r"^var/lib/apt/lists/(?!lock$|partial/?$|auxfiles/?$).+"), "apt lists"),
    (re.compile(r"^var/cache/apt/.+\.bin$"), "apt caches"),
    (re.compile(r"^var/cache/apt/archives/.+\.deb$"), "downloaded .deb files"),
    (re.compile(r"^(root|home/[^/]+)/\.cache/pip(/|$)"), "pip caches"),
    # the cache is mounted for pip steps only, so nothing may ever be found at its mount point
    (re.compile(f"^{re.escape(PIP_CACHE_MOUNT.lstrip('/'))}(/|$)"), "lamina's pip cache"),
    (re.compile(r"^var/log/.+\.log$"), "log files"),
    (re.compile(r"^var/log/apt/.+"), "log files"),
    (re.compile(r"^tmp/.+"), "files in /tmp"),
]
PYC_FLAGS_OFFSET = 4  # PEP 552: magic (4 bytes), then a 32-bit flags field


@dataclass(frozen=True)
class Finding:
    layer: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.layer}: /{self.path} ({self.problem})"


def scan_layer(blob: Path, name: str) -> list[Finding]:
    """Everything in one (gzip or plain) tar layer that should not be there."""
    try:
        return _scan(blob, name)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ToolError(f"layer hygiene: layer {name} is not a readable tar ({exc})") from None


def _scan(blob: Path, name: str) -> list[Finding]:
    findings: list[Finding] = []
    with blob.open("rb") as raw:
        magic = raw.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(blob, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            path = member.name.lstrip("./")
            for pattern, problem in _FORBIDDEN:
                if pattern.search(path):
                    findings.append(Finding(name, path, problem))
                    break
            else:
                if member.isfile() and path.endswith(".pyc"):
                    handle = tar.extractfile(member)
                    head = handle.read(8) if handle else b""
                    flags = int.from_bytes(head[PYC_FLAGS_OFFSET:8], "little")
                    if len(head) == 8 and not flags & 1:
                        findings.append(Finding(name, path, "timestamp-based .pyc"))
    return findings


def ducc_ingest_warnings(blob: Path, name: str) -> list[str]:
    """What unpacked.cern.ch will show differently from a container runtime, for one layer.

    DUCC ingests each layer alone (``cvmfs_server ingest --tolerate-missing-hardlinks``,
    cvmfs/cvmfs ducc/lib/image.go ``IngestIntoCVMFSWithLogger``) and resolves a hardlink only
    against the entries of the same tar (cvmfs/sync_union_tarball.cc ``PostUpload``): a
    hardlink to a file of a lower layer becomes an empty file there. Such a link is a
    warning, naming the file, not a failure. A layer that is not gzip is an error: DUCC reads
    every layer through ``gzip.NewReader`` and would fail on it, so lamina never stores one."""
    with blob.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise ToolError(f"layer {name} is not gzip-compressed: unpacked.cern.ch reads every "
                            "layer through gzip.NewReader and could not ingest it")
    own: set[str] = set()
    links: list[tuple[str, str]] = []
    try:
        with gzip.open(blob, "rb") as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                path = _tar_path(member.name)
                if member.islnk():
                    links.append((path, _tar_path(member.linkname)))
                elif member.isreg() or member.issym():
                    own.add(path)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ToolError(f"layer hygiene: layer {name} is not a readable tar ({exc})") from None
    return [f"layer {name}: /{path} is a hardlink to /{target} of a lower layer; "
            "unpacked.cern.ch shows it as an empty file (DUCC ingests each layer alone): "
            "copy the file instead"
            for path, target in links if target not in own]


def _tar_path(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")
