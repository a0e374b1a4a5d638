"""A private OCI layout that buildah and skopeo write an image into before the store takes it.

containers/image writes a layout's ``index.json`` and manifest blobs in place
(``os.WriteFile`` in oci/layout/oci_dest.go, v5.23 as in buildah 1.28 and skopeo 1.9), and
rewrites ``index.json`` from what it read when it started, so a tool killed mid-write leaves
a truncated index or manifest, and two tools writing one layout drop each other's refs. So
no tool writes the store: each export goes into a staging layout of its own (a scratch
directory beside the store, see :mod:`lamina.scratch`), is verified there (every new blob
against its digest), and only then does the store link its blobs in and name it, under the
store lock (:meth:`lamina.store.Store.promote`).

**Only the node's new layers are compressed and written.** buildah and skopeo push from
containers-storage, whose layers are named by their *uncompressed* digests
(``LayerInfosForCopy`` in storage/storage_src.go, containers/image v5.23), and the OCI layout
destination reuses a blob only when a file with exactly that digest exists
(``TryReusingBlobWithOptions`` in oci/layout/oci_dest.go only stats ``blobs/sha256/<digest>``;
it never asks the blob-info cache for a compressed blob of a known uncompressed digest). So
every parent layer, already in the store compressed, would be read, compressed and written
again. Instead :meth:`StagingLayout.seed_parent_layers` puts an empty placeholder at the path
of each parent layer's uncompressed digest (its ``rootfs.diff_ids`` entry): the push skips
those layers, and compresses and writes only the new ones.
:meth:`StagingLayout.reuse_parent_layers` then swaps each placeholder's descriptor for the
parent's stored, compressed descriptor of the same ``diff_id``, writes the final manifest
and removes the placeholders, so no manifest ever names one. The config is the one the push
wrote (its ``diff_ids`` do not depend on compression), so the image is the same image, with
the parent's exact layer blobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


@dataclass(frozen=True)
class ExportCount:
    """What an export wrote into its staging layout, and what it reused from the store."""

    new_layers: int
    reused_layers: int
    written_blobs: int  # layers and config the store did not hold yet
    written_bytes: int

    def __str__(self) -> str:
        return (f"{self.new_layers} new layers and the config written ({self.written_blobs} "
                f"blobs, {self.written_bytes} bytes new to the store), {self.reused_layers} "
                "parent layers reused from the store")


class StagingLayout(OciLayout):
    def __init__(self, root: Path, store: Store) -> None:
        super().__init__(root)
        self.store = store
        self._reused: dict[str, dict[str, Any]] = {}  # placeholder diff_id -> stored layer

    def seed_parent_layers(self, parent: StoredImage | None) -> None:
        """Placeholders at the uncompressed digests of ``parent``'s layers (see the module
        docstring); a parent layer stored uncompressed is linked here itself."""
        self._reused.clear()
        if parent is None:
            return
        diff_ids = self.store.config(parent).get("rootfs", {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(parent.layers):
            raise ToolError(f"{parent.ref}: its config lists {len(diff_ids or [])} diff_ids "
                            f"for {len(parent.layers)} layers")
        for diff_id, desc in zip(diff_ids, parent.layers, strict=True):
            target = self.blob_path(str(diff_id))
            target.parent.mkdir(parents=True, exist_ok=True)
            if str(desc["digest"]) == diff_id:
                with contextlib.suppress(FileExistsError):
                    try:
                        os.link(self.store.blob_path(diff_id), target)
                    except OSError:
                        shutil.copyfile(self.store.blob_path(diff_id), target)
                continue
            target.touch()
            self._reused[str(diff_id)] = dict(desc)

    def reuse_parent_layers(self, ref: str) -> ExportCount:
        """Point ``ref``'s placeholder layers at the parent's stored blobs and drop the
        placeholders; what the push wrote (new layers, config) is counted."""
        image = self.get(ref)
        if image is None:
            raise ToolError(f"{ref}: the export left no valid image manifest in {self.root}")
        config = self.read_blob(image.config_digest) or self.store.read_blob(
            image.config_digest)
        diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids") if config else None
        layers = []
        reused = 0
        for index, desc in enumerate(image.layers):
            stored = self._reused.get(str(desc["digest"]))
            if stored is not None:
                if not isinstance(diff_ids, list) or index >= len(diff_ids) or \
                        diff_ids[index] != desc["digest"]:
                    raise ToolError(f"{ref}: layer {index} of the export is not the parent "
                                    "layer its config names")
                reused += 1
            layers.append(stored if stored is not None else desc)
        if reused:
            manifest = dict(image.manifest)
            manifest["layers"] = layers
            raw = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
            self._name(ref, raw)
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(image.manifest_digest).unlink()  # the push's own manifest
        for diff_id in self._reused:
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(diff_id).unlink()
        written = [d for d in [image.manifest["config"], *layers]
                   if str(d["digest"]) not in self._reused and self.blob_path(
                       str(d["digest"])).is_file() and not self.store.holds_blob(
                       str(d["digest"]), int(d["size"]))]
        return ExportCount(new_layers=len(image.layers) - reused, reused_layers=reused,
                           written_blobs=len(written),
                           written_bytes=sum(int(d["size"]) for d in written))

    def _name(self, ref: str, raw: bytes) -> None:
        """Store a manifest blob and point ``ref`` in this layout's index at it."""
        digest = sha256_digest(raw)
        atomic.write_bytes(self.blob_path(digest), raw)
        index = self.index()
        for desc in index.get("manifests", []):
            if (desc.get("annotations") or {}).get(REF_ANNOTATION) == ref:
                desc.update(digest=digest, size=len(raw))
        atomic.write_json(self.root / "index.json", index, indent=None, sort_keys=False)

    def annotate(self, ref: str, annotations: dict[str, str]) -> None:
        """Add manifest annotations to ``ref`` here (engine images carry none)."""
        image = self.get(ref)
        if image is None:
            raise ToolError(f"{ref} is missing from the staging layout {self.root}")
        manifest = dict(image.manifest)
        manifest["annotations"] = {**image.annotations, **annotations}
        self._name(ref, json.dumps(manifest, separators=(",", ":")).encode())

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
