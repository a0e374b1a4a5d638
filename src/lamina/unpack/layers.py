"""Applying OCI layer tarballs onto a root filesystem directory, safely, as the unpacker does.

The result must be what ``unpacked.cern.ch`` serves (notes/cvmfs-unpacked.md §2.3, §4), so the
merge follows the OCI layer rules and DUCC's catalog merge:

* Each layer is read twice. The first pass collects whiteouts (``.wh.<name>``) and opaque
  markers (``.wh..wh..opq``) and deletes what they hide from the *lower* layers, whatever the
  marker's position in the tar; the second pass extracts the layer's entries. So an opaque
  directory followed by re-created children, or a whiteout next to a re-added name, come out
  right. Markers never reach the tree.
* An entry replaces what is at its path, except directory over directory (metadata update,
  children kept). A non-directory replacing a directory removes the whole subtree.
* Hardlinks point at a path already in the tree (this layer or a lower one). A hardlink whose
  target does not exist becomes an **empty file** with the entry's mode and a note, as DUCC does
  since cvmfs#4286 (apt/dnf caches leave such links across layers).
* Device nodes, FIFOs and unknown entry types are skipped with a note: they cannot be made
  unprivileged and ``/dev`` is bind-mounted at run time anyway.
* Modes are kept as in the tar, setuid/setgid/sticky included (DUCC's ingest keeps them); they
  are counted because CVMFS clients ignore them unless ``CVMFS_SUID=yes``. Ownership is never
  changed, even as root: CVMFS clients show every file as the mounting user
  (``CVMFS_CLAIM_OWNERSHIP``). Extended attributes are not applied.
* ``.cvmfscatalog``, ``.cvmfsautocatalog`` and ``.cvmfsdirtab`` (anywhere) are dropped, as the
  2026 overlay merge does, and counted.
* The root entry (``./``) of a layer does not change the root directory's mode.

Security: every path is resolved through :mod:`lamina.unpack.rootfs` (no symlink is ever
followed; absolute and ``..`` names are refused).
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from lamina.unpack.rootfs import (
    LayerError,
    RootFS,
    UnsafeEntryError,
    normalise,
    set_mtime,
)

__all__ = ["LayerError", "LayerStats", "RootFS", "UnsafeEntryError", "apply_layer",
           "apply_layers"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
CVMFS_CONTROL_FILES = frozenset({".cvmfscatalog", ".cvmfsautocatalog", ".cvmfsdirtab"})
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
NOTE_EXAMPLES = 5  # names kept per kind of note; the counts are always complete


@dataclass
class LayerStats:
    """What applying layers did, for the summary; ``notes`` keep a few names per kind."""

    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    whiteouts: int = 0
    opaque_dirs: int = 0
    skipped_special: int = 0
    dangling_hardlinks: int = 0
    setid_files: int = 0
    dropped_cvmfs: int = 0
    not_gzip: int = 0
    dir_opens: int = 0  # directory openat calls: one per directory for a depth-first layer
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, text: str) -> None:
        examples = self.notes.setdefault(kind, [])
        if len(examples) < NOTE_EXAMPLES:
            examples.append(text)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


def short(digest: str) -> str:
    return digest if len(digest) <= 19 else digest[:19]


def open_layer(path: Path, media_type: str, digest: str) -> tuple[IO[bytes], bool]:
    """The layer blob as an uncompressed tar stream, and whether it was gzip.

    zstd is refused here: DUCC runs every blob through a gzip reader, so such an image would
    fail on unpacked.cern.ch; failing early is the point of a local preview."""
    with path.open("rb") as probe:
        magic = probe.read(4)
    if magic.startswith(GZIP_MAGIC):
        return cast(IO[bytes], gzip.GzipFile(path, "rb")), True
    if magic == ZSTD_MAGIC or "zstd" in media_type:
        raise LayerError(f"layer {digest} is zstd-compressed ({media_type or 'no media type'}); "
                         "unpacked.cern.ch only ingests gzip layers: push with "
                         "--compression-format gzip")
    return path.open("rb"), False


@contextmanager
def _tar(path: Path, media_type: str, digest: str) -> Iterator[tuple[tarfile.TarFile, bool]]:
    stream, gzipped = open_layer(path, media_type, digest)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            yield tar, gzipped
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise LayerError(f"layer {digest}: not a readable tar archive: {exc}") from None
    finally:
        stream.close()


def _is_marker_path(parts: list[str]) -> bool:
    return any(p.startswith(WHITEOUT_PREFIX) for p in parts[:-1])


def _apply_markers(rootfs: RootFS, tar: tarfile.TarFile, digest: str,
                   stats: LayerStats) -> None:
    """First pass: delete what this layer's whiteouts and opaque markers hide below it."""
    opaque: list[list[str]] = []
    whiteouts: list[list[str]] = []
    for member in tar:
        parts = normalise(member.name, digest)
        if not parts or not parts[-1].startswith(WHITEOUT_PREFIX) or _is_marker_path(parts):
            continue
        base = parts[-1]
        if base == OPAQUE_MARKER:
            opaque.append(parts[:-1])
            continue
        target = base[len(WHITEOUT_PREFIX):]
        if target.startswith(WHITEOUT_PREFIX) or target in ("", "."):
            continue  # other AUFS metadata (.wh..wh.plnk ...): meaningless here, as for docker
        if target == "..":
            raise UnsafeEntryError(f"layer {digest}: whiteout {member.name!r} names '..'; "
                                   "refusing to unpack a layer that reaches outside its "
                                   "directory")
        whiteouts.append([*parts[:-1], target])
    for parts in opaque:
        stats.opaque_dirs += 1
        if not parts:
            fd = os.dup(rootfs.fd)
        else:
            pfd = rootfs.existing_parent(parts, digest, "/".join(parts))
            if pfd is None:
                continue
            try:
                st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                os.close(pfd)
                continue
            if not stat.S_ISDIR(st.st_mode):
                rootfs.remove(pfd, parts[-1], tuple(parts))  # re-created as a dir by pass two
                os.close(pfd)
                continue
            fd = os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                         | os.O_CLOEXEC, dir_fd=pfd)
            os.close(pfd)
        try:
            rootfs.clear_children(fd, tuple(parts))
        finally:
            os.close(fd)
    for parts in whiteouts:
        stats.whiteouts += 1
        pfd = rootfs.existing_parent(parts, digest, "/".join(parts))
        if pfd is None:
            continue
        try:
            rootfs.remove(pfd, parts[-1], tuple(parts))
        finally:
            os.close(pfd)


def _write_file(rootfs: RootFS, pfd: int, comp: str, member: tarfile.TarInfo,
                source: IO[bytes] | None) -> None:
    fd = os.open(comp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=pfd)
    try:
        if source is not None:
            while chunk := source.read(CHUNK):
                os.write(fd, chunk)
        os.chmod(fd, stat.S_IMODE(member.mode))
        set_mtime(fd, member.mtime)
    finally:
        os.close(fd)


def _extract(rootfs: RootFS, tar: tarfile.TarFile, digest: str, stats: LayerStats) -> None:
    """Second pass: create this layer's entries, replacing what is at their paths."""
    for member in tar:
        parts = normalise(member.name, digest)
        if not parts:
            continue  # the root itself: its mode is not the image's to change
        if parts[-1].startswith(WHITEOUT_PREFIX) or _is_marker_path(parts):
            continue
        if any(p in CVMFS_CONTROL_FILES for p in parts):
            stats.dropped_cvmfs += 1
            stats.note("dropped_cvmfs", member.name)
            continue
        link_parts: list[str] = []
        if member.islnk():
            link_parts = normalise(member.linkname, digest, f"hardlink {member.name!r} target")
        pfd = rootfs.parent(parts, digest, member.name)
        comp = parts[-1]
        try:
            try:
                existing = os.stat(comp, dir_fd=pfd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                existing = None
            if member.isdir():
                if existing is not None and not stat.S_ISDIR(existing):
                    rootfs.remove(pfd, comp, tuple(parts))
                    existing = None
                if existing is None:
                    os.mkdir(comp, 0o700, dir_fd=pfd)
                os.chmod(comp, 0o700 | stat.S_IMODE(member.mode), dir_fd=pfd)
                rootfs.dir_meta.set(parts, member.mode, member.mtime)
                stats.dirs += 1
                continue
            if member.islnk() and link_parts == parts:
                continue  # a link to itself: what is there stays
            if existing is not None:
                rootfs.remove(pfd, comp, tuple(parts))
            if member.isreg():
                _write_file(rootfs, pfd, comp, member, tar.extractfile(member))
                stats.files += 1
                if member.mode & (stat.S_ISUID | stat.S_ISGID):
                    stats.setid_files += 1
                    stats.note("setid_files", member.name)
            elif member.issym():
                if "\x00" in member.linkname:
                    raise LayerError(f"layer {digest}: symlink {member.name!r} target contains "
                                     "a NUL byte")
                os.symlink(member.linkname, comp, dir_fd=pfd)
                set_mtime(comp, member.mtime, dir_fd=pfd)
                stats.symlinks += 1
            elif member.islnk():
                _hardlink(rootfs, pfd, comp, member, link_parts, digest, stats)
            else:
                kind = {tarfile.CHRTYPE: "char device", tarfile.BLKTYPE: "block device",
                        tarfile.FIFOTYPE: "fifo"}.get(member.type, f"type {member.type!r}")
                stats.skipped_special += 1
                stats.note("skipped_special", f"{member.name} ({kind})")
        finally:
            os.close(pfd)


def _hardlink(rootfs: RootFS, pfd: int, comp: str, member: tarfile.TarInfo,
              link_parts: list[str], digest: str, stats: LayerStats) -> None:
    tfd = (rootfs.existing_parent(link_parts, digest, f"{member.name} -> {member.linkname}",
                                  strict=True) if link_parts else None)
    try:
        target_mode = None
        if tfd is not None:
            try:
                target_mode = os.stat(link_parts[-1], dir_fd=tfd,
                                      follow_symlinks=False).st_mode
            except FileNotFoundError:
                target_mode = None
        if target_mode is None:
            # DUCC (cvmfs#4286): a hardlink to a file that is not there becomes an empty file
            _write_file(rootfs, pfd, comp, member, None)
            stats.dangling_hardlinks += 1
            stats.note("dangling_hardlinks", f"{member.name} -> {member.linkname}")
            return
        if stat.S_ISDIR(target_mode):
            raise LayerError(f"layer {digest}: hardlink {member.name!r} points at directory "
                             f"{member.linkname!r}")
        assert tfd is not None
        os.link(link_parts[-1], comp, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        stats.hardlinks += 1
    finally:
        if tfd is not None:
            os.close(tfd)


def apply_layer(rootfs: RootFS, blob: Path, digest: str, media_type: str,
                stats: LayerStats) -> None:
    """Apply one layer blob (gzip or plain tar) onto ``rootfs``."""
    with _tar(blob, media_type, digest) as (tar, gzipped):
        _apply_markers(rootfs, tar, digest, stats)
    if not gzipped:
        stats.not_gzip += 1
        stats.note("not_gzip", f"{digest} ({media_type or 'no media type'}): "
                               "unpacked.cern.ch only ingests gzip layers")
    with _tar(blob, media_type, digest) as (tar, _):
        _extract(rootfs, tar, digest, stats)


def apply_layers(root: Path, layers: list[tuple[Path, str, str]],
                 before_finish: Callable[[RootFS], None] | None = None) -> LayerStats:
    """Apply ``(blob, digest, media type)`` layers bottom to top onto the directory ``root``.

    ``before_finish`` runs while every directory is still writable (the final directory modes
    are applied after it): that is where ``/.singularity.d`` is injected."""
    stats = LayerStats()
    rootfs = RootFS(root)
    try:
        for blob, digest, media_type in layers:
            apply_layer(rootfs, blob, digest, media_type, stats)
        if before_finish is not None:
            before_finish(rootfs)
        rootfs.finish()
        stats.dir_opens = rootfs.dir_opens
    finally:
        rootfs.close()
    return stats
