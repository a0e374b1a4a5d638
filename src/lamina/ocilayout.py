"""Reading an OCI image layout directory (image-spec ``image-layout.md``): refs and blobs.

Shared by the store and by the private staging layouts that buildah and skopeo write into.
A layout written by someone else may be damaged; a reader never trusts a descriptor it did
not check, so anything malformed reads as absent rather than as a traceback.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ToolError

REF_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DIGEST_PREFIX = "sha256:"


def sha256_digest(data: bytes) -> str:
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def valid_digest(digest: object) -> bool:
    """``sha256:<64 lowercase hex>``: the only digests lamina writes or follows."""
    if not isinstance(digest, str) or not digest.startswith(DIGEST_PREFIX):
        return False
    hexpart = digest[len(DIGEST_PREFIX):]
    return len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart)


@dataclass(frozen=True)
class StoredImage:
    ref: str
    manifest_digest: str
    manifest: dict[str, Any]
    size: int = 0  # of the manifest blob

    @property
    def annotations(self) -> dict[str, str]:
        found = self.manifest.get("annotations")
        return dict(found) if isinstance(found, dict) else {}

    @property
    def config_digest(self) -> str:
        return str(self.manifest["config"]["digest"])

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers") or [])

    @property
    def blobs(self) -> list[dict[str, Any]]:
        """Descriptors of the config and every layer."""
        return [self.manifest["config"], *self.layers]


def well_formed(manifest: Any) -> bool:
    """An image manifest whose config and layers are descriptors lamina can follow."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        return False
    layers = manifest.get("layers", [])
    if not isinstance(layers, list):
        return False
    return all(isinstance(d, dict) and valid_digest(d.get("digest"))
               and isinstance(d.get("size"), int) for d in [manifest["config"], *layers])


class OciLayout:
    """Read-only view of a layout directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def transport(self, ref: str) -> str:
        """The containers-image transport name of ``ref`` (for buildah, skopeo)."""
        return f"oci:{self.root}:{ref}"

    def blob_path(self, digest: str) -> Path:
        if not valid_digest(digest):
            raise ToolError(f"not a sha256 digest: {digest[:80]!r}")
        return self.root / "blobs" / "sha256" / digest[len(DIGEST_PREFIX):]

    def read_blob(self, digest: str) -> bytes | None:
        """The blob's bytes if it is there and matches its digest, else None."""
        try:
            data = self.blob_path(digest).read_bytes()
        except (FileNotFoundError, IsADirectoryError, ToolError):
            return None
        return data if sha256_digest(data) == digest else None

    def read_blob_json(self, digest: str) -> dict[str, Any]:
        data = self.read_blob(digest)
        if data is None:
            raise ToolError(f"blob {digest} is missing or damaged in {self.root}")
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ToolError(f"blob {digest} in {self.root} is not JSON") from None
        if not isinstance(parsed, dict):
            raise ToolError(f"blob {digest} in {self.root} is not a JSON object")
        return parsed

    def index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "manifests": []}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ToolError(f"store index {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("manifests", []), list):
            raise ToolError(f"store index {path} is not an OCI image index")
        return data

    def descriptors(self) -> list[dict[str, Any]]:
        return [d for d in self.index().get("manifests", []) if isinstance(d, dict)]

    def refs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for desc in self.descriptors():
            annotations = desc.get("annotations")
            ref = annotations.get(REF_ANNOTATION) if isinstance(annotations, dict) else None
            if isinstance(ref, str) and valid_digest(desc.get("digest")):
                out[ref] = str(desc["digest"])
        return out

    def get(self, ref: str) -> StoredImage | None:
        """The image manifest ``ref`` names, verified against its digest; None if absent,
        damaged, or not an image manifest."""
        digest = self.refs().get(ref)
        if digest is None:
            return None
        raw = self.read_blob(digest)
        if raw is None:
            return None
        try:
            manifest = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not well_formed(manifest):
            return None
        return StoredImage(ref=ref, manifest_digest=digest, manifest=manifest, size=len(raw))

    def config(self, image: StoredImage) -> dict[str, Any]:
        return self.read_blob_json(image.config_digest)

    def has_blobs(self, image: StoredImage) -> bool:
        """Every blob ``image`` names is present with its recorded size (a cheap check)."""
        for desc in image.blobs:
            try:
                if self.blob_path(str(desc["digest"])).stat().st_size != int(desc["size"]):
                    return False
            except (FileNotFoundError, ToolError):
                return False
        return True
