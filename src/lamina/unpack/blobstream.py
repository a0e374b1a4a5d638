"""A layer blob as a tar stream whose bytes are hashed as they are read, bounded as they are
inflated, and parsed with bounded headers.

Verification happens in the same reads that parse the layer, never in an extra read of a big
blob (:mod:`lamina.unpack.layers` reads each layer twice, once for its whiteouts and once to
extract it):

* pass one hashes the compressed bytes (they must hash to the manifest's layer digest, after
  the size was checked against the descriptor) and the uncompressed tar stream (it must hash to
  the config's ``rootfs.diff_ids[i]``: image-spec ``config.md``, "Layer DiffID": the digest
  over the layer's uncompressed tar archive). The stream is drained to its end for that, so
  trailing bytes count. Nothing of the layer is written until both matched;
* pass two, which extracts, hashes the compressed bytes again, from the same open file, and the
  flat is discarded if they changed in between.

zstd is refused here: DUCC runs every blob through a gzip reader, so such an image would fail
on unpacked.cern.ch; failing early is the point of a local preview.

Headers are bounded like Go's ``archive/tar`` (what docker, containerd and DUCC read layers
with: ``maxSpecialFileSize``, 1 MiB, for a PAX header or GNU long name), and a run of special
headers is bounded too: Python's ``tarfile`` reads one recursively per header and would
otherwise hit ``RecursionError``, or read a 10 GB "header" into memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar, cast

from lamina.unpack.budget import ByteBudget, human
from lamina.unpack.rootfs import LayerError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
STREAM_SLACK = 16 << 20
MAX_SPECIAL_HEADER = 1 << 20  # Go archive/tar reader.go: maxSpecialFileSize
MAX_SPECIAL_RUN = 16  # consecutive PAX / GNU long-name headers before one real entry
SPECIAL_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
                 tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
TAR_ERRORS = (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error, OSError, ValueError,
              OverflowError, UnicodeError, RecursionError)


T = TypeVar("T")


class DigestMismatch(LayerError):
    """A layer's bytes are not what its manifest or config says."""


class BoundedTarInfo(tarfile.TarInfo):
    """A tar header whose PAX records and GNU long names are bounded in size and number."""

    def _proc_member(self, tar: tarfile.TarFile) -> Any:
        if self.type not in SPECIAL_TYPES:
            return super()._proc_member(tar)  # type: ignore[misc]
        if self.size > MAX_SPECIAL_HEADER:
            raise tarfile.HeaderError(f"an extended header of {self.size} bytes (the limit is "
                                      f"{MAX_SPECIAL_HEADER}, as in Go's archive/tar)")
        depth = getattr(tar, "_lamina_special_run", 0) + 1
        if depth > MAX_SPECIAL_RUN:
            raise tarfile.HeaderError(f"more than {MAX_SPECIAL_RUN} extended headers in a row")
        tar._lamina_special_run = depth  # type: ignore[attr-defined]
        try:
            return super()._proc_member(tar)  # type: ignore[misc]
        finally:
            tar._lamina_special_run = depth - 1  # type: ignore[attr-defined]


class HashingReader(io.RawIOBase):
    """Reads through ``inner``, hashing and counting every byte; past ``limit`` it raises."""

    def __init__(self, inner: IO[bytes], algorithm: str, limit: int | None = None,
                 on_limit: LayerError | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.hash = hashlib.new(algorithm)
        self.count = 0
        self.limit = limit
        self.on_limit = on_limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.hash.update(data)
        self.count += size
        if self.limit is not None and self.count > self.limit:
            assert self.on_limit is not None
            raise self.on_limit
        return size

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return f"{self.hash.name}:{self.hash.hexdigest()}"


@dataclass(frozen=True)
class LayerRef:
    """One layer to apply: its blob, and what it must hash to (None: not checked)."""

    blob: Path
    digest: str
    media_type: str
    size: int | None = None
    diff_id: str | None = None
    position: str = ""  # "2 of 3", for messages

    @property
    def label(self) -> str:
        return f"{self.digest} ({self.position})" if self.position else self.digest


class TarPass:
    """One pass over a layer's entries; reading errors become the layer's one-line error."""

    def __init__(self, blob: LayerBlob, tar: tarfile.TarFile, raw: HashingReader) -> None:
        self.blob = blob
        self.tar = tar
        self.raw = raw

    def members(self) -> Iterator[tarfile.TarInfo]:
        entries = iter(self.tar)
        while True:
            member = self.blob.guarded(lambda: next(entries, None), self.raw)
            if member is None:
                return
            yield member

    def chunks(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        """The data of regular file ``member``, in chunks."""
        source = self.blob.guarded(lambda: self.tar.extractfile(member), self.raw)
        if source is None:
            return
        while chunk := self.blob.guarded(lambda: source.read(CHUNK), self.raw):
            yield chunk


class LayerBlob:
    """An open layer blob, read once per pass from the same file descriptor."""

    def __init__(self, ref: LayerRef, budget: ByteBudget | None) -> None:
        self.ref = ref
        self.budget = budget
        try:
            self.fd = os.open(ref.blob, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise LayerError(f"layer {ref.digest} is missing ({ref.blob})") from None
        info = os.fstat(self.fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(self.fd)
            raise LayerError(f"layer {ref.digest}: {ref.blob} is not a regular file")
        size = info.st_size
        if ref.size is not None and size != ref.size:
            os.close(self.fd)
            raise DigestMismatch(f"layer {ref.label}: the blob has {size} bytes but the "
                                 f"manifest says {ref.size}; the layout is corrupt or was "
                                 "tampered with")
        self.magic = os.pread(self.fd, 4, 0)
        self.gzipped = self.magic.startswith(GZIP_MAGIC)
        if not self.gzipped and (self.magic == ZSTD_MAGIC or "zstd" in ref.media_type):
            os.close(self.fd)
            raise LayerError(f"layer {ref.digest} is zstd-compressed "
                             f"({ref.media_type or 'no media type'}); unpacked.cern.ch only "
                             "ingests gzip layers: push with --compression-format gzip")

    def close(self) -> None:
        os.close(self.fd)

    def _algorithm(self, digest: str | None) -> str:
        return (digest or "sha256:").partition(":")[0]

    @contextmanager
    def read(self, *, verify_content: bool) -> Iterator[TarPass]:
        """The layer's tar entries, for one pass. With ``verify_content`` (pass one) the
        compressed and uncompressed digests are checked when the block ends; without it (pass
        two) only the compressed bytes are checked against pass one. Only errors of reading
        the layer become its "not a readable tar archive" error; whatever the block raises
        (an unsafe entry, a full disk) goes through unchanged, and nothing is verified then."""
        os.lseek(self.fd, 0, os.SEEK_SET)
        raw_file = os.fdopen(os.dup(self.fd), "rb", buffering=CHUNK)
        raw = HashingReader(raw_file, self._algorithm(self.ref.digest))
        # tar headers and padding come on top of the files: twice the cap (plus a little) is
        # more than any layer within the cap needs, and bounds a bomb hidden in the padding
        limit = 2 * self.budget.limit + STREAM_SLACK if self.budget is not None else None
        too_big = (self.budget.refuse(self.ref.digest, "its uncompressed tar stream is more "
                                      "than twice") if self.budget is not None else None)
        inflated = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb") if self.gzipped
                        else io.BufferedReader(raw, CHUNK))
        plain = HashingReader(inflated, self._algorithm(self.ref.diff_id), limit, too_big)
        try:
            tar = self.guarded(lambda: tarfile.open(  # noqa: SIM115 (closed just below)
                fileobj=plain, mode="r|", tarinfo=BoundedTarInfo), raw)
            with tar:
                yield TarPass(self, tar, raw)
            if verify_content:
                self.guarded(plain.drain, raw)
            self.guarded(raw.drain, raw)
            self._check(raw, plain if verify_content else None)
        finally:
            inflated.close()
            raw_file.close()

    def guarded(self, step: Callable[[], T], raw: HashingReader) -> T:
        """Run one read of the layer, turning a read failure into a one-line LayerError."""
        try:
            return step()
        except LayerError:
            raise
        except TAR_ERRORS as exc:
            self._explain(raw)
            raise LayerError(f"layer {self.ref.digest}: not a readable tar archive: "
                             f"{exc}") from None

    def _explain(self, raw: HashingReader) -> None:
        """A corrupt stream is usually a blob that is not what its digest says: say so."""
        try:
            raw.drain()
        except (OSError, ValueError):
            return
        if raw.digest() != self.ref.digest:
            raise self._mismatch(raw.digest())

    def _mismatch(self, actual: str) -> DigestMismatch:
        return DigestMismatch(f"layer {self.ref.label}: the blob does not match its digest "
                              f"(its content hashes to {actual}); the layout is corrupt or "
                              "was tampered with")

    def _check(self, raw: HashingReader, plain: HashingReader | None) -> None:
        if raw.digest() != self.ref.digest:
            raise self._mismatch(raw.digest())
        if plain is not None and self.ref.diff_id is not None \
                and plain.digest() != self.ref.diff_id:
            raise DigestMismatch(
                f"layer {self.ref.label}: its uncompressed content ({human(plain.count)}) "
                f"hashes to {plain.digest()}, not to the config's rootfs.diff_ids entry "
                f"{self.ref.diff_id}; refusing an image whose layers do not match its config")
