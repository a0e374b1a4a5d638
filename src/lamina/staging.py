"""A private OCI layout that buildah and skopeo write an image into before the store takes it.

containers/image writes a layout's ``index.json`` and manifest blobs in place
(``os.WriteFile`` in oci/layout/oci_dest.go, v5.23 as in buildah 1.28 and skopeo 1.9), and
rewrites ``index.json`` from what it read when it started, so a tool killed mid-write leaves
a truncated index or manifest, and two tools writing one layout drop each other's refs. So
no tool writes the store: each export goes into a staging layout of its own (a scratch
directory beside the store, see :mod:`lamina.scratch`), is verified there (every new blob
against its digest), and only then does the store link its blobs in and name it, under the
store lock (:meth:`lamina.store.Store.promote`).

A staging layout is seeded with hard links to the store's blobs of the parent image, which
containers/image finds by digest (``TryReusingBlob`` only stats the path), so the parent's
layers are neither compressed nor copied again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lamina import atomic
from lamina.errors import ToolError
from lamina.hashing import sha256_file
from lamina.ocilayout import (
    DIGEST_PREFIX,
    OCI_MANIFEST,
    REF_ANNOTATION,
    OciLayout,
    StoredImage,
    sha256_digest,
)

if TYPE_CHECKING:
    from lamina.store import Store


@dataclass(frozen=True)
class StagedImage:
    """An image verified in a staging layout, with the exact manifest bytes to store."""

    image: StoredImage
    raw: bytes
    layout: StagingLayout

    @property
    def digest(self) -> str:
        return self.image.manifest_digest


class StagingLayout(OciLayout):
    def __init__(self, root: Path, store: Store) -> None:
        super().__init__(root)
        self.store = store

    def seed(self, image: StoredImage | None) -> None:
        """Hard-link the store's blobs of ``image`` (a parent) here."""
        if image is None:
            return
        for desc in image.blobs:
            source = self.store.blob_path(str(desc["digest"]))
            target = self.blob_path(str(desc["digest"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError, FileNotFoundError):
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)  # another filesystem: copy once

    def annotate(self, ref: str, annotations: dict[str, str]) -> None:
        """Add manifest annotations to ``ref`` here (engine images carry none)."""
        image = self.get(ref)
        if image is None:
            raise ToolError(f"{ref} is missing from the staging layout {self.root}")
        manifest = dict(image.manifest)
        manifest["annotations"] = {**image.annotations, **annotations}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        digest = sha256_digest(raw)
        atomic.write_bytes(self.blob_path(digest), raw)
        index = self.index()
        for desc in index.get("manifests", []):
            if (desc.get("annotations") or {}).get(REF_ANNOTATION) == ref:
                desc.update(digest=digest, size=len(raw))
        atomic.write_json(self.root / "index.json", index, indent=None, sort_keys=False)

    def staged(self, ref: str) -> StagedImage:
        """``ref`` with every blob verified: the manifest by its digest, each config and layer
        blob the store does not hold yet by its digest and size."""
        image = self.get(ref)
        if image is None:
            raise ToolError(f"{ref}: the export left no valid image manifest in {self.root}")
        if image.manifest.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
            raise ToolError(f"{ref}: exported manifest is {image.manifest.get('mediaType')}, "
                            f"expected {OCI_MANIFEST}")
        raw = self.blob_path(image.manifest_digest).read_bytes()
        for desc in image.blobs:
            digest, size = str(desc["digest"]), int(desc["size"])
            if self.store.holds_blob(digest, size):
                continue
            path = self.blob_path(digest)
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                raise ToolError(f"{ref}: blob {digest} is missing from the export") from None
            if actual != size or DIGEST_PREFIX + sha256_file(path) != digest:
                raise ToolError(f"{ref}: blob {digest} does not match its digest or size "
                                f"({actual} bytes, manifest says {size})")
        return StagedImage(image, raw, self)
