"""The local store: an OCI image layout directory plus lamina's records beside the images.

A laptop with no registry still gets real, inspectable images: skopeo, umoci and apptainer
read an OCI layout directly. Each (image, platform) is one reference, ``<image>-<arch>``.
What lamina knows about a node (its key and named inputs, layer sizes, report digests, test
results, the last failure) lives in ``<store>/lamina/<image>/<arch>.json`` so that the
records travel with the images when a store is copied or shared.

This class is the only writer of the store, and the only code that composes its paths:
every file (blobs, ``index.json``, records, reports, history copies, publications) is
written through :mod:`lamina.atomic` (unique temporary name, fsync, rename) while holding
the store lock, which is re-entrant within a process and exclusive across processes
(:mod:`lamina.locks`). Tools never write the store: they export into a staging layout
(:mod:`lamina.staging`) that :meth:`Store.promote` takes in. Readers treat a missing, empty
or invalid record or report as absent, and reports are trusted only when they match the
digest the node's record holds for them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lamina import atomic
from lamina.errors import ToolError
from lamina.locks import FileLock, WaitCallback, file_lock
from lamina.ocilayout import (
    OCI_MANIFEST,
    REF_ANNOTATION,
    OciLayout,
    StoredImage,
    sha256_digest,
    valid_digest,
    well_formed,
)
from lamina.scratch import owned_dir
from lamina.staging import StagedImage, StagingLayout

__all__ = ["REF_ANNOTATION", "REPORTS", "Store", "StoredImage"]

# The reports of a node, by file suffix: the package manifest (JSON, Markdown) and the SBOM.
REPORTS = ("manifest.json", "manifest.md", "cdx.json")
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'


class Store(OciLayout):
    # -- locks and scratch space beside the layout --------------------------------------
    def _beside(self, suffix: str) -> Path:
        return self.root.parent / f".{self.root.name}.{suffix}"

    @property
    def lock(self) -> FileLock:
        return file_lock(self._beside("lock"))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store lock (re-entrant; every writer below takes it too)."""
        with self.lock.held():
            yield

    @contextlib.contextmanager
    def node_lock(self, image: str, arch: str, on_wait: WaitCallback | None = None
                  ) -> Iterator[None]:
        """One run at a time builds, tests or fetches a node of this store."""
        with file_lock(self._beside("nodes") / f"{image}-{arch}.lock").held(on_wait):
            yield

    @contextlib.contextmanager
    def staging(self) -> Iterator[StagingLayout]:
        """A private layout for one export, removed afterwards (see :mod:`lamina.staging`)."""
        with owned_dir(self._beside("staging"), "export-") as directory:
            yield StagingLayout(directory, self)

    # -- OCI layout writes ----------------------------------------------------------------
    def holds_blob(self, digest: str, size: int) -> bool:
        try:
            return self.blob_path(digest).stat().st_size == size
        except (FileNotFoundError, ToolError):
            return False

    def put_blob(self, raw: bytes) -> str:
        digest = sha256_digest(raw)
        with self.locked():
            if self.read_blob(digest) is None:
                atomic.write_bytes(self.blob_path(digest), raw)
        return digest

    def _link_blob(self, source: Path, digest: str, size: int) -> None:
        """Take a verified staging blob in (a hard link when on the same filesystem)."""
        if self.holds_blob(digest, size):
            return
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.link")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        try:
            os.link(source, temporary)
            os.replace(temporary, target)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            with source.open("rb") as src, atomic.replacing(target) as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)

    def _set_refs(self, refs: dict[str, tuple[str, int, str] | None]) -> None:
        """Point each ref at (digest, size, media type), or drop it (None); one write."""
        with self.locked():
            layout = self.index()
            keep = [d for d in layout.get("manifests", []) if not isinstance(d, dict)
                    or (d.get("annotations") or {}).get(REF_ANNOTATION) not in refs]
            for ref, target in refs.items():
                if target is not None:
                    digest, size, media_type = target
                    keep.append({"mediaType": media_type, "digest": digest, "size": size,
                                 "annotations": {REF_ANNOTATION: ref}})
            layout["schemaVersion"] = 2
            layout["manifests"] = keep
            if not (self.root / "oci-layout").is_file():
                atomic.write_bytes(self.root / "oci-layout", LAYOUT_FILE)
            atomic.write_json(self.root / "index.json", layout, indent=None, sort_keys=False)

    def reachable(self) -> set[str]:
        """Every blob a ref reaches: its manifest or index, an index's children, each
        manifest's config and layers. Unreadable blobs reach nothing further."""
        seen: set[str] = set()
        todo = [str(d.get("digest")) for d in self.descriptors()]
        while todo:
            digest = todo.pop()
            if digest in seen or not valid_digest(digest):
                continue
            seen.add(digest)
            raw = self.read_blob(digest)
            try:
                document = json.loads(raw) if raw is not None else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                document = None
            if not isinstance(document, dict):
                continue
            children = document.get("manifests")
            for child in children if isinstance(children, list) else []:
                if isinstance(child, dict):
                    todo.append(str(child.get("digest")))
            if well_formed(document):
                seen.update(str(d["digest"]) for d in [document["config"],
                                                        *document.get("layers", [])])
        return seen

    def forget(self, refs: list[str], blobs: tuple[str, ...] = ()) -> None:
        """Drop ``refs``, then delete each of their blobs, and each of ``blobs``, that no
        remaining ref reaches: the layout keeps no blob nothing names (``umoci gc`` would
        otherwise be the only one to notice)."""
        with self.locked():
            named = self.refs()
            candidates = [named[r] for r in refs if r in named] + list(blobs)
            if not candidates:
                return
            if any(r in named for r in refs):
                self._set_refs({r: None for r in refs})
            keep = self.reachable()
            for digest in candidates:
                if digest not in keep and valid_digest(digest):
                    with contextlib.suppress(FileNotFoundError):
                        self.blob_path(digest).unlink()

    def put_manifest(self, ref: str, raw: bytes, media_type: str) -> tuple[str, int]:
        """Store a manifest or index blob and name it ``ref``; returns (digest, size)."""
        with self.locked():
            digest = self.put_blob(raw)
            self._set_refs({ref: (digest, len(raw), media_type)})
        return digest, len(raw)

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
        merged = {**stored.annotations, **annotations}
        manifest["annotations"] = dict(sorted((k, v) for k, v in merged.items()
                                              if k not in drop or k in annotations))
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        return self.put_manifest(new_ref, raw, str(manifest.get("mediaType", OCI_MANIFEST)))

    def promote(self, staged: StagedImage, image: str, arch: str, ref: str,
                record: dict[str, Any], reports: dict[str, bytes]) -> StoredImage:
        """Make a verified staged image the node ``ref``, with its reports and record, in one
        locked step. The record is written last and says ``verified: true``; it holds the
        manifest digest and each report's digest, so a step interrupted anywhere before it
        leaves a record that does not match (:mod:`lamina.noderecord`)."""
        try:
            with self.locked():
                for desc in staged.image.blobs:
                    digest = str(desc["digest"])
                    self._link_blob(staged.layout.blob_path(digest), digest,
                                    int(desc["size"]))
                written = self._write_reports(image, arch, str(record["key"]), reports)
                digest = self.put_blob(staged.raw)
                self._set_refs({ref: (digest, len(staged.raw), OCI_MANIFEST)})
                self.write_record(image, arch, {**record, "manifest_digest": digest,
                                                "reports": written, "verified": True})
        except OSError as exc:
            raise ToolError(f"storing {ref} in {self.root}: {exc.strerror or exc}") from None
        promoted = self.get(ref)
        if promoted is None or promoted.manifest_digest != digest:
            raise ToolError(f"{ref} is not in the store after promotion")
        return promoted

    # -- reports ---------------------------------------------------------------------------
    def _node_dir(self, image: str) -> Path:
        if not image or "/" in image or image.startswith("."):
            raise ToolError(f"not an image name: {image!r}")
        return self.root / "lamina" / image

    def report_path(self, image: str, arch: str, name: str) -> Path:
        if name not in REPORTS:
            raise ToolError(f"unknown report {name!r}")
        return self._node_dir(image) / f"{arch}.{name}"

    def _write_reports(self, image: str, arch: str, key: str, reports: dict[str, bytes]
                       ) -> dict[str, dict[str, Any]]:
        written: dict[str, dict[str, Any]] = {}
        for name, data in reports.items():
            atomic.write_bytes(self.report_path(image, arch, name), data)
            written[name] = {"digest": sha256_digest(data), "size": len(data)}
        if "manifest.json" in reports:
            history = self._node_dir(image) / "history"
            atomic.write_bytes(history / f"{arch}-{key.removeprefix('sha256:')[:16]}.json",
                               reports["manifest.json"])
        return written

    def report(self, image: str, arch: str, name: str) -> bytes | None:
        """A report's bytes if the node's record vouches for them (digest and size)."""
        expected = (self.read_record(image, arch).get("reports") or {}).get(name)
        if not isinstance(expected, dict) or not valid_digest(expected.get("digest")):
            return None
        try:
            data = self.report_path(image, arch, name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return None
        if not data or len(data) != expected.get("size") or \
                sha256_digest(data) != expected["digest"]:
            return None
        return data

    def history(self, image: str, arch: str, key_prefix: str) -> list[dict[str, Any]]:
        """Package manifests kept per key (for ``lamina diff``); damaged copies are skipped."""
        out: list[dict[str, Any]] = []
        if not key_prefix or any(c not in "0123456789abcdef" for c in key_prefix):
            return out
        base = self._node_dir(image) / "history"
        for path in sorted(base.glob(f"{arch}-{key_prefix[:16]}*.json")):
            data = _json_object(path)
            if data and str(data.get("key", "")).removeprefix("sha256:").startswith(
                    key_prefix[:16]):
                out.append(data)
        return out

    # -- records ---------------------------------------------------------------------------
    def record_path(self, image: str, arch: str) -> Path:
        return self._node_dir(image) / f"{arch}.json"

    def read_record(self, image: str, arch: str) -> dict[str, Any]:
        return _json_object(self.record_path(image, arch))

    def write_record(self, image: str, arch: str, record: dict[str, Any]) -> None:
        with self.locked():
            atomic.write_json(self.record_path(image, arch), record)

    def update_record(self, image: str, arch: str, **changes: Any) -> dict[str, Any]:
        with self.locked():
            record = self.read_record(image, arch)
            record.update(changes)
            self.write_record(image, arch, record)
        return record

    def publication_path(self, image: str) -> Path:
        return self._node_dir(image) / "published.json"

    def read_publications(self, image: str) -> dict[str, Any]:
        """Where ``image`` was published: repository → {tags, index digest, platforms}."""
        return _json_object(self.publication_path(image))

    def record_publication(self, image: str, repository: str, entry: dict[str, Any]) -> None:
        with self.locked():
            data = self.read_publications(image)
            data[repository] = entry
            atomic.write_json(self.publication_path(image), data)


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is missing, empty, damaged or not an object."""
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, json.JSONDecodeError,
            UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
