"""Crafting layers and OCI image layouts byte by byte, so each test says exactly what it feeds."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Docker's well-known empty layer: gzip of a 1024-byte all-zero tar (distribution's
# gzippedEmptyTar), digest sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4.
EMPTY_LAYER = bytes([31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0,
                     8, 0, 0, 255, 255, 46, 175, 181, 239, 0, 4, 0, 0])
EMPTY_LAYER_DIGEST = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass
class Entry:
    name: str
    kind: str = "file"  # file dir symlink hardlink chr blk fifo
    data: bytes = b""
    mode: int | None = None
    linkname: str = ""
    mtime: int = 1700000000


def f(name: str, data: bytes | str = b"", mode: int = 0o644) -> Entry:
    return Entry(name, "file", data.encode() if isinstance(data, str) else data, mode)


def d(name: str, mode: int = 0o755) -> Entry:
    return Entry(name, "dir", mode=mode)


def sym(name: str, target: str) -> Entry:
    return Entry(name, "symlink", linkname=target, mode=0o777)


def hard(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", linkname=target, mode=0o644)


TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
         "fifo": tarfile.FIFOTYPE}


def tar_bytes(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = TYPES[e.kind]
            info.mode = e.mode if e.mode is not None else 0o644
            info.mtime = e.mtime
            info.linkname = e.linkname
            if e.kind in ("chr", "blk"):
                info.devmajor, info.devminor = 1, 3
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@dataclass
class Layout:
    root: Path
    blobs: dict[str, bytes] = field(default_factory=dict)

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.root / "blobs" / "sha256" / digest.split(":")[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return digest

    def image(self, layers: list[bytes], *, env: list[str] | None = None,
              cmd: list[str] | None = None, entrypoint: list[str] | None = None,
              arch: str = "amd64", variant: str | None = None, workdir: str = "",
              media: str = GZIP_LAYER) -> tuple[str, int, str]:
        """Write config + manifest; return (manifest digest, size, config digest)."""
        config: dict[str, Any] = {
            "architecture": arch, "os": "linux",
            "config": {"Env": env or [], "Cmd": cmd, "Entrypoint": entrypoint,
                       "WorkingDir": workdir},
            "rootfs": {"type": "layers", "diff_ids": [
                "sha256:" + hashlib.sha256(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b)
                .hexdigest() for b in layers]},
        }
        if variant:
            config["variant"] = variant
        raw_config = json.dumps(config).encode()
        config_digest = self.blob(raw_config)
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": config_digest, "size": len(raw_config)},
                    "layers": [{"mediaType": media, "digest": self.blob(b), "size": len(b)}
                               for b in layers]}
        raw = json.dumps(manifest).encode()
        return self.blob(raw), len(raw), config_digest

    def index(self, entries: list[tuple[str, int, dict[str, str]]]) -> tuple[str, int]:
        raw = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
            {"mediaType": MANIFEST, "digest": dg, "size": size, "platform": plat}
            for dg, size, plat in entries]}).encode()
        return self.blob(raw), len(raw)

    def tag(self, ref: str, digest: str, size: int, media: str = MANIFEST) -> None:
        (self.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        path = self.root / "index.json"
        index = json.loads(path.read_text()) if path.exists() else {"schemaVersion": 2,
                                                                     "manifests": []}
        index["manifests"].append({"mediaType": media, "digest": digest, "size": size,
                                   "annotations": {"org.opencontainers.image.ref.name": ref}})
        path.write_text(json.dumps(index))


def single(root: Path, layers: list[bytes], ref: str = "test", **kwargs: Any) -> str:
    """A layout at ``root`` with one image ``ref``; returns the config digest."""
    layout = Layout(root)
    digest, size, config = layout.image(layers, **kwargs)
    layout.tag(ref, digest, size)
    return config


# ---- raw documents, for layouts that are malformed on purpose ----

CONFIG = "application/vnd.oci.image.config.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def diff_id(layer: bytes) -> str:
    """The DiffID of a layer blob: the digest of its uncompressed tar (config.md)."""
    return sha256(gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer)


def config_doc(diff_ids: list[str], **extra: Any) -> dict[str, Any]:
    return {"architecture": "amd64", "os": "linux", "config": {"Env": []},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}, **extra}


def desc(digest: str, size: int, media: str = MANIFEST, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest, "size": size, **extra}


class RawLayout(Layout):
    """A layout whose documents are written exactly as given (any shape)."""

    def json_blob(self, doc: Any) -> dict[str, Any]:
        """Store ``doc`` as a blob; return a descriptor of it (media type to be set)."""
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return {"digest": self.blob(raw), "size": len(raw)}

    def write_index(self, doc: Any) -> None:
        (self.root / "oci-layout").parent.mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        (self.root / "index.json").write_bytes(raw)

    def manifest(self, config: Any, layers: Any, **extra: Any) -> dict[str, Any]:
        """A manifest blob with exactly these ``config`` and ``layers`` values."""
        doc = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers,
               **extra}
        return {"mediaType": MANIFEST, **self.json_blob(doc)}

    def image_parts(self, layers: list[bytes], diff_ids: list[str] | None = None
                    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A valid config descriptor and layer descriptors for ``layers``."""
        config = self.json_blob(config_doc(diff_ids if diff_ids is not None
                                           else [diff_id(b) for b in layers]))
        return ({"mediaType": CONFIG, **config},
                [desc(self.blob(b), len(b), GZIP_LAYER) for b in layers])

    def tag_desc(self, descriptor: dict[str, Any], ref: str = "test") -> None:
        self.write_index({"schemaVersion": 2, "manifests": [
            {**descriptor, "annotations": {"org.opencontainers.image.ref.name": ref}}]})
