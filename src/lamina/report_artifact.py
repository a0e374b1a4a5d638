"""A node's reports (package manifest JSON and Markdown, CycloneDX SBOM) as an OCI artifact
attached to each image lamina pushes, and read back from a registry.

The artifact follows image-spec ``manifest.md`` "Guidelines for Artifact Usage": an image
manifest with ``artifactType`` :data:`REPORT_ARTIFACT`, the empty config descriptor
(``application/vnd.oci.empty.v1+json``, the two bytes ``{}``), one layer per report, and a
``subject`` naming the image. It becomes a referrer of the image through
:mod:`lamina.referrers` (the referrers API, else the tag-schema index, merged so that other
tools' referrers stay). The empty config and the per-image SBOM are pushed from memory: the
store holds no blob that no ref reaches.

Each published image gets an SBOM whose ``metadata.component`` is that image (reference and
digest: the key-tagged build under its key tag, the release copy under ``<tag>-<arch>``),
made from the node's stored SBOM by :func:`lamina.manifests.sbom_for_subject`.
"""

from __future__ import annotations

import json
from typing import Any

from lamina.manifests import sbom_for_subject
from lamina.ocilayout import OCI_MANIFEST, sha256_digest
from lamina.plan import PlanEntry
from lamina.referrers import attach, list_referrers, referrers_tag
from lamina.registry_client import RegistryClient
from lamina.render import KEY_LABEL
from lamina.store import Store

REPORT_TYPES = {
    "manifest.json": "application/vnd.dev.lamina.packages.v1+json",
    "manifest.md": "text/markdown",
    "cdx.json": "application/vnd.cyclonedx+json",
}
REPORT_ARTIFACT = "application/vnd.dev.lamina.report.v1"
# image-spec manifest.md "Guidance for an Empty Descriptor"
EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
TITLE = "org.opencontainers.image.title"


def verified_reports(store: Store, image: str, arch: str) -> list[tuple[str, bytes, str]]:
    """The node's reports that its record vouches for: (report name, bytes, media type)."""
    out = []
    for name, media_type in REPORT_TYPES.items():
        data = store.report(image, arch, name)
        if data is not None:
            out.append((name, data, media_type))
    return out


def is_lamina_report(descriptor: dict[str, Any]) -> bool:
    return descriptor.get("artifactType") == REPORT_ARTIFACT


def attach_reports(client: RegistryClient, store: Store, entry: PlanEntry, repository: str,
                   reference: str, subject_digest: str, subject_size: int) -> str | None:
    """Attach the node's reports to the image ``reference`` (``registry/ns/image:tag``, at
    ``repository`` in the registry's API) whose manifest is ``subject_digest``; returns the
    artifact's digest, or None when the node has no verified reports. An earlier lamina
    report of the same image is replaced; nothing else attached to it is touched."""
    unit = entry.unit
    assert unit is not None
    files = verified_reports(store, entry.image, entry.platform.arch)
    if not files:
        return None
    arch = entry.platform.arch
    layers = []
    for name, data, media_type in files:
        if name == "cdx.json":
            data = sbom_for_subject(data, reference, subject_digest, entry.platform.name)
        digest = sha256_digest(data)
        client.push_blob(repository, digest, data)
        layers.append({"mediaType": media_type, "digest": digest, "size": len(data),
                       "annotations": {TITLE: f"{arch}.{name}"}})
    empty = sha256_digest(EMPTY_CONFIG)
    client.push_blob(repository, empty, EMPTY_CONFIG)
    artifact = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": REPORT_ARTIFACT,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty, "size": len(EMPTY_CONFIG)},
        "layers": layers,
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject_digest, "size": subject_size},
        # copied into the referrers list, so a reader can tell which build they describe
        "annotations": {KEY_LABEL: unit.key, TITLE: f"lamina reports of {reference}"},
    }
    raw = json.dumps(artifact, separators=(",", ":"), sort_keys=True).encode()
    own = sha256_digest(raw)
    attached = attach(client, repository, subject_digest, raw,
                      lambda d: is_lamina_report(d) and d.get("digest") != own)
    return attached.digest


def fetch_reports(client: RegistryClient, repository: str, subject: str, key: str
                  ) -> dict[str, bytes]:
    """The reports lamina attached to ``subject`` for ``key``, by report name, found as any
    referrers client finds them (the API, else the tag schema); {} when there are none.
    The artifact must name ``subject`` and every blob is checked against its digest."""
    listed, via = list_referrers(client, repository, subject)
    ours = [d for d in listed if is_lamina_report(d)
            and (d.get("annotations") or {}).get(KEY_LABEL, key) == key]
    if ours:
        artifact = client.manifest(repository, str(ours[-1].get("digest")))
    elif via == "tag schema":
        # lamina before the referrers index pushed its report manifest itself as the tag
        artifact = client.manifest(repository, referrers_tag(subject))
        if artifact is not None and not is_lamina_report(artifact.body):
            return {}
    else:
        return {}
    if artifact is None or (artifact.body.get("subject") or {}).get("digest") != subject:
        return {}
    wanted = {media_type: name for name, media_type in REPORT_TYPES.items()}
    found: dict[str, bytes] = {}
    layers = artifact.body.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        name = wanted.get(str(layer.get("mediaType"))) if isinstance(layer, dict) else None
        if name is not None and name not in found:
            data = client.blob(repository, str(layer.get("digest")))
            if data:
                found[name] = data
    return found
