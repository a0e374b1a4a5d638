"""The local store: an OCI image layout directory plus lamina's records beside the images.

A laptop with no registry still gets real, inspectable images: skopeo, umoci and apptainer
read an OCI layout directly. Each (image, platform) is one reference, ``<image>-<arch>``.
What lamina knows about a node (its key and named inputs, layer sizes, test results, the last
failure) lives in ``<store>/lamina/<image>/<arch>.json`` so that the records travel with the
images when a store is copied or shared.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.errors import ToolError

REF_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class StoredImage:
    ref: str
    manifest_digest: str
    manifest: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.manifest.get("annotations") or {})

    @property
    def config_digest(self) -> str:
        return str(self.manifest["config"]["digest"])

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers") or [])


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- OCI layout --------------------------------------------------------------------
    def transport(self, ref: str) -> str:
        """The containers-image transport name of ``ref`` (for buildah, skopeo)."""
        return f"oci:{self.root}:{ref}"

    def blob_path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algo / hexpart

    def read_blob_json(self, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.blob_path(digest).read_bytes())
        return data

    def index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        if not path.exists():
            return {"schemaVersion": 2, "manifests": []}
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ToolError(f"store index {path} is not valid JSON: {exc.msg}") from None
        return data

    def refs(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for desc in self.index().get("manifests", []):
            ref = (desc.get("annotations") or {}).get(REF_ANNOTATION)
            if ref:
                out[ref] = desc["digest"]
        return out

    def get(self, ref: str) -> StoredImage | None:
        digest = self.refs().get(ref)
        if digest is None:
            return None
        try:
            manifest = self.read_blob_json(digest)
        except FileNotFoundError:
            return None
        return StoredImage(ref=ref, manifest_digest=digest, manifest=manifest)

    def derive(self, ref: str, new_ref: str, annotations: dict[str, str],
               drop: tuple[str, ...] = ()) -> tuple[str, int]:
        """Store a copy of ``ref``'s manifest with extra annotations under ``new_ref``.

        Config and layers are shared, so this costs one small blob; the built manifest stays
        as it was (reproducible builds compare its digest). Returns (digest, size).
        """
        stored = self.get(ref)
        if stored is None:
            raise ToolError(f"{ref} is not in the store")
        manifest = dict(stored.manifest)
        merged = {**(manifest.get("annotations") or {}), **annotations}
        manifest["annotations"] = dict(sorted((k, v) for k, v in merged.items()
                                              if k not in drop or k in annotations))
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        with self.locked():
            path = self.blob_path(digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
            layout = self.index()
            keep = [d for d in layout.get("manifests", [])
                    if (d.get("annotations") or {}).get(REF_ANNOTATION) != new_ref]
            keep.append({"mediaType": manifest.get("mediaType",
                                                   "application/vnd.oci.image.manifest.v1+json"),
                         "digest": digest, "size": len(raw),
                         "annotations": {REF_ANNOTATION: new_ref}})
            layout["manifests"] = keep
            tmp = self.root / "index.json.tmp"
            tmp.write_text(json.dumps(layout))
            os.replace(tmp, self.root / "index.json")
        return digest, len(raw)

    def annotate(self, ref: str, annotations: dict[str, str]) -> None:
        """Add manifest annotations to ``ref`` (a new manifest blob; caller holds the lock)."""
        stored = self.get(ref)
        if stored is None:
            raise ToolError(f"{ref} is not in the store")
        manifest = dict(stored.manifest)
        manifest["annotations"] = {**(manifest.get("annotations") or {}), **annotations}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        layout = self.index()
        for desc in layout.get("manifests", []):
            if (desc.get("annotations") or {}).get(REF_ANNOTATION) == ref:
                desc["digest"] = digest
                desc["size"] = len(raw)
        tmp = self.root / "index.json.tmp"
        tmp.write_text(json.dumps(layout))
        os.replace(tmp, self.root / "index.json")

    def config(self, image: StoredImage) -> dict[str, Any]:
        return self.read_blob_json(image.config_digest)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise writers of index.json (parallel builds push into the same layout)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root.parent / f".{self.root.name}.lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- records -------------------------------------------------------------------------
    def record_path(self, image: str, arch: str) -> Path:
        return self.root / "lamina" / image / f"{arch}.json"

    def read_record(self, image: str, arch: str) -> dict[str, Any]:
        path = self.record_path(image, arch)
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data

    def write_record(self, image: str, arch: str, record: dict[str, Any]) -> None:
        path = self.record_path(image, arch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def publication_path(self, image: str) -> Path:
        return self.root / "lamina" / image / "published.json"

    def read_publications(self, image: str) -> dict[str, Any]:
        """Where ``image`` was published: repository → {tags, index digest, platforms}."""
        try:
            data: dict[str, Any] = json.loads(self.publication_path(image).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return data

    def record_publication(self, image: str, repository: str, entry: dict[str, Any]) -> None:
        data = self.read_publications(image)
        data[repository] = entry
        path = self.publication_path(image)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    def update_record(self, image: str, arch: str, **changes: Any) -> dict[str, Any]:
        record = self.read_record(image, arch)
        record.update(changes)
        self.write_record(image, arch, record)
        return record
