"""The JSON documents of an OCI image layout, read bounded, verified and shape-checked.

A layout given to ``lamina unpack`` (``oci:PATH``, the store, the cache a registry was copied
into) is data lamina did not write. Every document is therefore

* read with a size cap of 4 MiB, the limit containers/image (skopeo, podman, buildah) applies
  to manifests and configs (``internal/iolimits``: ``MaxManifestBodySize``,
  ``MaxConfigBodySize``), and refused beyond it;
* for a blob, checked against the descriptor that named it before it is parsed: its size, then
  its digest (image-spec ``descriptor.md``, "Verification": content from untrusted sources
  SHOULD be verified against the digest, the size first);
* parsed into typed values here, so a descriptor without a digest, a list where an object
  belongs (``manifests``, ``config``, ``layers``, ``annotations``, ``platform``) or a config
  without ``rootfs.diff_ids`` is one line (``file: key: expected …, got …``) and never reaches
  the code that builds paths from digests.

Digests name files and directories (``blobs/<alg>/<hex>``, ``.flat/<cc>/<hex>``), so only the
two registered algorithms in their canonical form (``sha256:<64 hex>``, ``sha512:<128 hex>``)
are accepted.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ToolError, UsageError
from lamina.jsondoc import (
    MiB,
    expect_int,
    expect_list,
    expect_object,
    expect_str,
    kind,
    parse_json,
    read_bytes,
)

MAX_DOCUMENT = 4 * MiB
ANY_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


class LayoutError(ToolError):
    """An image layout is malformed, incomplete or does not match its own digests."""


def checked_digest(value: object, where: Path | str, key: str = "digest") -> str:
    """A digest from an image document, which is data from the network: anything but a plain
    digest is refused before it reaches a path."""
    if value is None:
        raise LayoutError(f"{where}: {key}: a descriptor without a digest")
    if not isinstance(value, str) or not ANY_DIGEST_RE.match(value):
        shown = repr(value) if isinstance(value, str) else kind(value)
        raise LayoutError(f"{where}: {key}: invalid digest {shown[:100]} in an image document "
                          "(expected sha256:<64 hex digits> or sha512:<128 hex digits>)")
    return value


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexpart = checked_digest(digest, layout).partition(":")
    return layout / "blobs" / algo / hexpart


def digest_of(algorithm: str) -> Any:
    return hashlib.new(algorithm)


@dataclass(frozen=True)
class Platform:
    architecture: str
    variant: str | None


@dataclass(frozen=True)
class Descriptor:
    """image-spec ``descriptor.md``: what a manifest, an index or index.json points at."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]
    platform: Platform | None


def _optional_str(obj: dict[str, Any], name: str, where: str, key: str) -> str | None:
    value = obj.get(name)
    full = f"{key}.{name}" if key else name
    return None if value is None else expect_str(value, where, full, LayoutError)


def descriptor(value: object, where: str, key: str) -> Descriptor:
    obj = expect_object(value, where, key, LayoutError)
    digest = checked_digest(obj.get("digest"), where, f"{key}.digest")
    if "size" not in obj:
        raise LayoutError(f"{where}: {key}.size: a descriptor without a size")
    size = expect_int(obj["size"], where, f"{key}.size", LayoutError)
    if size < 0:
        raise LayoutError(f"{where}: {key}.size: a negative size ({size})")
    media = _optional_str(obj, "mediaType", where, key) or ""
    annotations: dict[str, str] = {}
    if obj.get("annotations") is not None:
        raw = expect_object(obj["annotations"], where, f"{key}.annotations", LayoutError)
        for name, text in raw.items():
            annotations[name] = expect_str(text, where, f"{key}.annotations.{name}",
                                           LayoutError)
    platform = None
    if obj.get("platform") is not None:
        plat = expect_object(obj["platform"], where, f"{key}.platform", LayoutError)
        arch = _optional_str(plat, "architecture", where, f"{key}.platform") or "unknown"
        platform = Platform(arch, _optional_str(plat, "variant", where, f"{key}.platform"))
    return Descriptor(media, digest, size, annotations, platform)


def descriptors(doc: dict[str, Any], name: str, where: str) -> list[Descriptor]:
    """The descriptors listed under ``name`` (absent or null: none)."""
    raw = doc.get(name)
    if raw is None:
        return []
    items = expect_list(raw, where, name, LayoutError)
    return [descriptor(item, where, f"{name}[{number}]") for number, item in enumerate(items)]


def read_index_json(layout: Path) -> tuple[dict[str, Any], str]:
    """The layout's ``index.json`` (an object) and the name to use in messages."""
    path = layout / "index.json"
    if not path.exists():
        raise UsageError(f"{path} not found (not an OCI image layout?)")
    data = parse_json(read_bytes(path, limit=MAX_DOCUMENT, error=LayoutError,
                                 what="image index"), str(path), LayoutError)
    return expect_object(data, str(path), "(top level)", LayoutError), str(path)


def read_blob_document(layout: Path, desc: Descriptor, what: str) -> tuple[dict[str, Any], str]:
    """The JSON object in the blob ``desc`` names, after checking its size and digest."""
    path = blob_path(layout, desc.digest)
    if not path.is_file():
        raise LayoutError(f"{what} {desc.digest} is missing from {layout}")
    data = read_bytes(path, limit=MAX_DOCUMENT, error=LayoutError, what=what)
    verify_bytes(data, desc, what)
    doc = parse_json(data, str(path), LayoutError)
    return expect_object(doc, str(path), "(top level)", LayoutError), str(path)


def verify_bytes(data: bytes, desc: Descriptor, what: str) -> None:
    if len(data) != desc.size:
        raise LayoutError(f"{what} {desc.digest}: {len(data)} bytes, but its descriptor says "
                          f"{desc.size}; the layout is corrupt or was tampered with")
    algorithm, _, expected = desc.digest.partition(":")
    actual = digest_of(algorithm)
    actual.update(data)
    if actual.hexdigest() != expected:
        raise LayoutError(f"{what} {desc.digest} does not match its digest (the content hashes "
                          f"to {algorithm}:{actual.hexdigest()}); the layout is corrupt or was "
                          "tampered with")


def is_index(doc: dict[str, Any], desc: Descriptor) -> bool:
    media = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else desc.media_type
    return media in INDEX_TYPES or "manifests" in doc


@dataclass(frozen=True)
class Manifest:
    """An image manifest (image-spec ``manifest.md``), as far as unpacking needs it."""

    digest: str
    config: Descriptor
    layers: list[Descriptor]


def parse_manifest(doc: dict[str, Any], digest: str, where: str) -> Manifest:
    if doc.get("config") is None:
        raise LayoutError(f"{where}: config: a manifest without a config descriptor")
    config = descriptor(doc["config"], where, "config")
    return Manifest(digest, config, descriptors(doc, "layers", where))


@dataclass(frozen=True)
class ImageConfig:
    """An image configuration (image-spec ``config.md``): what the flat and exec need."""

    digest: str
    raw: dict[str, Any]
    diff_ids: list[str]
    architecture: str | None
    variant: str | None


def parse_config(doc: dict[str, Any], digest: str, where: str) -> ImageConfig:
    """config.md: ``rootfs`` is REQUIRED, its ``type`` MUST be ``layers`` (an unknown one MUST
    be an error) and ``diff_ids`` lists the layers' DiffIDs in order."""
    rootfs = expect_object(doc.get("rootfs"), where, "rootfs", LayoutError)
    rootfs_type = expect_str(rootfs.get("type"), where, "rootfs.type", LayoutError)
    if rootfs_type != "layers":
        raise LayoutError(f"{where}: rootfs.type: expected 'layers', got {rootfs_type[:40]!r}")
    raw_ids = expect_list(rootfs.get("diff_ids"), where, "rootfs.diff_ids", LayoutError)
    diff_ids = [checked_digest(value, where, f"rootfs.diff_ids[{number}]")
                for number, value in enumerate(raw_ids)]
    if doc.get("config") is not None:
        expect_object(doc["config"], where, "config", LayoutError)
    architecture = _optional_str(doc, "architecture", where, "")
    variant = _optional_str(doc, "variant", where, "")
    return ImageConfig(digest, doc, diff_ids, architecture, variant)
