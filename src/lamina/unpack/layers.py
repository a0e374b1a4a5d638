"""Applying OCI layer tarballs onto a root filesystem directory, safely, as the unpacker does.

The result must be what ``unpacked.cern.ch`` serves (notes/cvmfs-unpacked.md §2.3, §4), so the
merge follows the OCI layer rules and DUCC's catalog merge:

* Each layer is read twice. The first pass collects whiteouts (``.wh.<name>``) and opaque
  markers (``.wh..wh..opq``), verifies the layer's digest and DiffID and checks the size cap
  (:mod:`lamina.unpack.blobstream`, :mod:`lamina.unpack.budget`); only then are the markers
  applied, deleting what they hide from the *lower* layers whatever their position in the tar,
  and the second pass extracts the layer's entries. So an opaque
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

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lamina.unpack.blobstream import LayerBlob, LayerRef, TarPass
from lamina.unpack.budget import ByteBudget
from lamina.unpack.dirchain import open_dir
from lamina.unpack.rootfs import (
    LayerError,
    RootFS,
    UnsafeEntryError,
    normalise,
    set_mtime,
)

__all__ = ["LayerError", "LayerRef", "LayerStats", "RootFS", "UnsafeEntryError",
           "apply_layer", "apply_layers"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
CVMFS_CONTROL_FILES = frozenset({".cvmfscatalog", ".cvmfsautocatalog", ".cvmfsdirtab"})
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
    bytes_written: int = 0  # regular file content, what --max-bytes counts
    dir_opens: int = 0  # directory openat calls: about one per directory, whatever the depth
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, text: str) -> None:
        examples = self.notes.setdefault(kind, [])
        if len(examples) < NOTE_EXAMPLES:
            examples.append(text)

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


def short(digest: str) -> str:
    return digest if len(digest) <= 19 else digest[:19]


def _is_marker_path(parts: list[str]) -> bool:
    return any(p.startswith(WHITEOUT_PREFIX) for p in parts[:-1])


def _written_by_extract(member: tarfile.TarInfo, parts: list[str]) -> bool:
    """Whether pass two writes this entry's data (the same rules as :func:`_extract`)."""
    return (bool(parts) and member.isreg() and not parts[-1].startswith(WHITEOUT_PREFIX)
            and not _is_marker_path(parts) and not any(p in CVMFS_CONTROL_FILES for p in parts))


@dataclass
class Markers:
    opaque: list[list[str]] = field(default_factory=list)
    whiteouts: list[list[str]] = field(default_factory=list)


def _scan(tar: TarPass, digest: str, budget: ByteBudget | None
          ) -> tuple[Markers, LayerError | None]:
    """First pass: collect this layer's whiteouts and opaque markers and add up what pass two
    will write. A bad name is kept and raised after the layer's digests were checked: a layer
    that is not what its manifest says is reported as that."""
    markers = Markers()
    planned = 0
    deferred: LayerError | None = None
    for member in tar.members():
        try:
            parts = normalise(member.name, digest)
        except LayerError as exc:
            deferred = deferred or exc
            continue
        if _written_by_extract(member, parts):
            planned += member.size
            if budget is not None:
                budget.check_plan(planned, digest)
            continue
        if not parts or not parts[-1].startswith(WHITEOUT_PREFIX) or _is_marker_path(parts):
            continue
        base = parts[-1]
        if base == OPAQUE_MARKER:
            markers.opaque.append(parts[:-1])
            continue
        target = base[len(WHITEOUT_PREFIX):]
        if target.startswith(WHITEOUT_PREFIX) or target in ("", "."):
            continue  # other AUFS metadata (.wh..wh.plnk ...): meaningless here, as for docker
        if target == "..":
            deferred = deferred or UnsafeEntryError(
                f"layer {digest}: whiteout {member.name!r} names '..'; refusing to unpack a "
                "layer that reaches outside its directory")
            continue
        markers.whiteouts.append([*parts[:-1], target])
    return markers, deferred


def _apply_markers(rootfs: RootFS, markers: Markers, digest: str, stats: LayerStats) -> None:
    """Delete what this layer's whiteouts and opaque markers hide below it."""
    for parts in markers.opaque:
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
            try:
                fd = open_dir(parts[-1], pfd, rootfs.counter)
            finally:
                os.close(pfd)
        try:
            rootfs.clear_children(fd, tuple(parts))
        finally:
            os.close(fd)
    for parts in markers.whiteouts:
        stats.whiteouts += 1
        pfd = rootfs.existing_parent(parts, digest, "/".join(parts))
        if pfd is None:
            continue
        try:
            rootfs.remove(pfd, parts[-1], tuple(parts))
        finally:
            os.close(pfd)


def _write_file(pfd: int, comp: str, member: tarfile.TarInfo, data: Iterator[bytes] | None,
                budget: ByteBudget | None, digest: str, stats: LayerStats) -> None:
    fd = os.open(comp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=pfd)
    try:
        for chunk in data or ():
            if budget is not None:
                budget.charge(len(chunk), digest)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            stats.bytes_written += len(chunk)
        os.chmod(fd, stat.S_IMODE(member.mode))
        set_mtime(fd, member.mtime)
    finally:
        os.close(fd)


def _extract(rootfs: RootFS, tar: TarPass, digest: str, stats: LayerStats,
             budget: ByteBudget | None) -> None:
    """Second pass: create this layer's entries, replacing what is at their paths."""
    for member in tar.members():
        try:
            _extract_one(rootfs, tar, member, digest, stats, budget)
        except OSError as exc:
            # a name too long, a full disk: the system's words, and which entry it was
            raise LayerError(f"layer {digest}: entry {member.name[:200]!r}: "
                             f"{exc.strerror or exc}") from None


def _extract_one(rootfs: RootFS, tar: TarPass, member: tarfile.TarInfo, digest: str,
                 stats: LayerStats, budget: ByteBudget | None) -> None:
    """Create one entry, replacing what is at its path."""
    parts = normalise(member.name, digest)
    if not parts:
        return  # the root itself: its mode is not the image's to change
    if parts[-1].startswith(WHITEOUT_PREFIX) or _is_marker_path(parts):
        return
    if any(p in CVMFS_CONTROL_FILES for p in parts):
        stats.dropped_cvmfs += 1
        stats.note("dropped_cvmfs", member.name)
        return
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
            return
        if member.islnk() and link_parts == parts:
            return  # a link to itself: what is there stays
        if existing is not None:
            rootfs.remove(pfd, comp, tuple(parts))
        if member.isreg():
            _write_file(pfd, comp, member, tar.chunks(member), budget, digest, stats)
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
            _write_file(pfd, comp, member, None, None, digest, stats)
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


def apply_layer(rootfs: RootFS, ref: LayerRef, stats: LayerStats,
                budget: ByteBudget | None = None) -> None:
    """Apply one layer blob (gzip or plain tar) onto ``rootfs``, after verifying it."""
    blob = LayerBlob(ref, budget)
    try:
        with blob.read(verify_content=True) as tar:
            markers, deferred = _scan(tar, ref.digest, budget)
        if deferred is not None:
            raise deferred
        if not blob.gzipped:
            stats.not_gzip += 1
            stats.note("not_gzip", f"{ref.digest} ({ref.media_type or 'no media type'}): "
                                   "unpacked.cern.ch only ingests gzip layers")
        _apply_markers(rootfs, markers, ref.digest, stats)
        with blob.read(verify_content=False) as tar:
            _extract(rootfs, tar, ref.digest, stats, budget)
    finally:
        blob.close()


def apply_layers(root: Path, layers: list[LayerRef],
                 before_finish: Callable[[RootFS], None] | None = None,
                 budget: ByteBudget | None = None) -> LayerStats:
    """Apply ``layers`` bottom to top onto the directory ``root``.

    ``before_finish`` runs while every directory is still writable (the final directory modes
    are applied after it): that is where ``/.singularity.d`` is injected."""
    stats = LayerStats()
    rootfs = RootFS(root)
    try:
        for ref in layers:
            apply_layer(rootfs, ref, stats, budget)
        if before_finish is not None:
            before_finish(rootfs)
        rootfs.finish()
        stats.dir_opens = rootfs.dir_opens
    finally:
        rootfs.close()
    return stats
