"""OCI 1.1 referrers: attaching an artifact to an image, and finding what is attached.

Followed from opencontainers/distribution-spec ``spec.md`` (read at 967efdc, 2026-07):
"Pushing Manifests with Subject", "Listing Referrers", "Unavailable Referrers API" and
"Referrers Tag Schema"; and image-spec ``manifest.md`` (``subject``, ``artifactType``) and
``descriptor.md`` (``artifactType``).

* A registry with the referrers API lists every manifest whose ``subject`` is a digest at
  ``GET /v2/<name>/referrers/<digest>`` and answers ``OCI-Subject`` when such a manifest is
  pushed. There the referrer is pushed by digest and nothing else: the registry keeps the
  list, and no tag is written that could clobber another tool's.
* Without the API (Debian's distribution 2.8 answers the referrers URL with 404) the list is
  an image index under the tag ``<alg>-<hex>`` of the subject digest. A client adding a
  referrer pulls it (a 404 starts an empty index), adds the referrer's descriptor (with
  ``artifactType``: the manifest's, else its config's media type, and the manifest's
  annotations) unless it is there, and pushes it back. Entries lamina did not write
  (signatures, SBOMs of other tools) are kept as they are; only entries the caller says it
  replaces (lamina's earlier report for the same subject) are dropped. An index that is
  already right is not pushed again, so a rerun makes no manifest PUT.
* The spec leaves races on the tag to clients ("MAY use conditional HTTP requests"); the
  registries lamina targets ignore conditions on PUT, so after writing, the tag is read
  back and the merge redone (at most :data:`MERGE_ATTEMPTS` times) if another writer's
  index replaced ours in between.

Readers (:func:`list_referrers`) ask the API first and fall back to the tag schema, the
same way; a tag that holds no valid index means "no referrers", as the spec says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lamina.errors import RegistryError
from lamina.ocilayout import OCI_INDEX, OCI_MANIFEST, sha256_digest
from lamina.registry_client import RegistryClient

MERGE_ATTEMPTS = 3
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]")  # distribution-spec <tag>: [a-zA-Z0-9_][...-]*


def referrers_tag(digest: str) -> str:
    """The Referrers Tag of ``digest``: the algorithm truncated to 32 characters, ``-``, the
    encoded part truncated to 64, with characters a tag may not hold replaced by ``-``."""
    algorithm, _, encoded = digest.partition(":")
    return _NOT_IN_TAG.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def descriptor_of(raw: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
    """The referrers-list descriptor of a pushed manifest: media type, digest, size,
    ``artifactType`` (the manifest's, else its config's media type; omitted only for an
    index without one) and all of its annotations."""
    media_type = str(manifest.get("mediaType") or OCI_MANIFEST)
    out: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(raw),
                           "size": len(raw)}
    artifact_type = manifest.get("artifactType")
    if not artifact_type and media_type != OCI_INDEX:
        config = manifest.get("config")
        artifact_type = config.get("mediaType") if isinstance(config, dict) else None
    if artifact_type:
        out["artifactType"] = str(artifact_type)
    annotations = manifest.get("annotations")
    if isinstance(annotations, dict) and annotations:
        out["annotations"] = dict(annotations)
    return out


@dataclass(frozen=True)
class Attached:
    digest: str
    via: str  # "referrers API" or "tag schema"
    index_pushed: bool  # the tag-schema index was written by this call


def list_referrers(client: RegistryClient, repository: str, subject: str
                   ) -> tuple[list[dict[str, Any]], str]:
    """Descriptors of the manifests that name ``subject``, and where they came from."""
    listed = client.referrers(repository, subject)
    if listed is not None:
        return listed, "referrers API"
    current = client.manifest(repository, referrers_tag(subject))
    return (_index_entries(current.body) if current is not None else None) or [], \
        "tag schema"


def _index_entries(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The descriptors of an image index, or None when ``body`` is not one."""
    manifests = body.get("manifests")
    if body.get("mediaType", OCI_INDEX) != OCI_INDEX or not isinstance(manifests, list):
        return None
    return [d for d in manifests if isinstance(d, dict)]


def attach(client: RegistryClient, repository: str, subject: str, raw: bytes,
           replaces: Callable[[dict[str, Any]], bool]) -> Attached:
    """Make the manifest ``raw`` (which names ``subject``) a referrer of ``subject``.

    ``replaces(descriptor)`` says which existing entries this one supersedes (the caller's
    own earlier artifact of the same kind); every other entry stays.
    """
    manifest = json.loads(raw)
    descriptor = descriptor_of(raw, manifest)
    digest = descriptor["digest"]
    listed = client.referrers(repository, subject)
    if listed is not None:
        if not any(d.get("digest") == digest for d in listed):
            client.push_manifest(repository, digest, raw, descriptor["mediaType"])
        return Attached(digest, "referrers API", False)
    if client.manifest_digest(repository, digest) != digest:
        answer = client.push_manifest(repository, digest, raw, descriptor["mediaType"])
        if answer.get("OCI-Subject") == subject:  # the registry keeps the list itself
            return Attached(digest, "referrers API", False)
    pushed = False
    for attempt in range(MERGE_ATTEMPTS + 1):
        # the last round only reads back: the index is right, or another writer won
        if not _merge_into_tag(client, repository, subject, descriptor, replaces,
                               write=attempt < MERGE_ATTEMPTS):
            return Attached(digest, "tag schema", pushed)
        pushed = True
    raise RegistryError(f"{client.host}/{repository}:{referrers_tag(subject)}: another client "
                        f"kept rewriting the referrers index; {digest[:19]} is not listed")


def _merge_into_tag(client: RegistryClient, repository: str, subject: str,
                    descriptor: dict[str, Any],
                    replaces: Callable[[dict[str, Any]], bool], write: bool) -> bool:
    """One read-merge-write of the tag-schema index; True when it had to be written (and,
    with ``write``, was)."""
    tag = referrers_tag(subject)
    current = client.manifest(repository, tag)
    body: dict[str, Any] = {}
    entries: list[dict[str, Any]] = []
    if current is not None:
        found = _index_entries(current.body)
        if found is None:
            # lamina before 0.2 put its report manifest itself here: superseded like an
            # entry; anything else is another tool's and is not overwritten
            legacy = {**descriptor_of(b"", current.body), "digest": current.digest}
            if not replaces(legacy):
                raise RegistryError(
                    f"{client.host}/{repository}:{tag} holds a {current.media_type or 'manifest'}"
                    ", not an image index of referrers; refusing to overwrite it "
                    "(distribution-spec: Pushing Manifests with Subject)")
        else:
            body, entries = dict(current.body), found
    digest = descriptor["digest"]
    if descriptor in entries and not any(replaces(d) for d in entries
                                         if d.get("digest") != digest):
        return False
    kept = [d for d in entries if d.get("digest") != digest and not replaces(d)]
    index = {**body, "schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [*kept, descriptor]}
    if write:
        raw = json.dumps(index, separators=(",", ":")).encode()
        client.push_manifest(repository, tag, raw, OCI_INDEX)
    return True
