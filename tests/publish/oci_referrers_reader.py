"""An OCI 1.1 referrers client written from the specification text alone (it imports nothing
of lamina), to check what lamina publishes as any spec-following client would see it.

opencontainers/distribution-spec ``spec.md`` (967efdc):

* "Listing Referrers": ``GET /v2/<name>/referrers/<digest>`` answers 200 with an image index
  (``Content-Type: application/vnd.oci.image.index.v1+json``) whose descriptors carry
  ``artifactType`` and the referrer's annotations; a ``Link`` header with ``rel="next"``
  gives the next page. "If the referrers API returns a 404, the client MUST fallback to
  pulling the referrers tag schema", and if that is no valid index, "the client SHOULD
  assume there are no referrers".
* "Referrers Tag Schema": ``<alg truncated to 32>-<encoded truncated to 64>``, characters not
  allowed in a tag replaced by ``-``.
* "Pushing Manifests with Subject": push the manifest; without an ``OCI-Subject`` answer,
  pull the tag-schema index (404: start empty; not an index: report a failure), add the
  descriptor unless present (``artifactType`` from the manifest, else its config's
  ``mediaType``; all annotations copied) and push the index back under the tag.

This is what another tool (a signer, an SBOM generator) does; the tests use it to attach
foreign referrers before and after lamina publishes.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
TIMEOUT = 20


@dataclass
class Registry:
    """``base`` is ``https://host:port``; ``auth`` a (user, password) pair or None."""

    base: str
    verify: str | bool
    auth: tuple[str, str] | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return requests.request(method, url, auth=self.auth, verify=self.verify,
                                timeout=TIMEOUT, allow_redirects=False, **kwargs)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrers_tag(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{algorithm[:32]}-{encoded[:64]}")


def _index(response: requests.Response) -> list[dict[str, Any]] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("mediaType") != INDEX or \
            not isinstance(body.get("manifests"), list):
        return None
    return list(body["manifests"])


def list_referrers(registry: Registry, name: str, subject: str,
                   artifact_type: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The referrers of ``subject`` and how they were found ("api" or "tag")."""
    path = f"/v2/{name}/referrers/{subject}"
    if artifact_type:
        path += f"?artifactType={artifact_type}"
    response = registry.request("GET", path, headers={"Accept": INDEX})
    if response.status_code == 200:
        assert response.headers.get("Content-Type", "").split(";")[0] == INDEX
        found: list[dict[str, Any]] = []
        for _ in range(50):
            page = _index(response)
            assert page is not None, "the referrers API answered something that is no index"
            found += page
            link = response.headers.get("Link", "")
            match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', link)
            if not match:
                break
            response = registry.request("GET", urljoin(registry.base + path, match[1]),
                                        headers={"Accept": INDEX})
        filtered = "artifactType" in response.headers.get("OCI-Filters-Applied", "")
        if artifact_type and not filtered:
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found, "api"
    assert response.status_code == 404, response.status_code
    tagged = registry.request("GET", f"/v2/{name}/manifests/{referrers_tag(subject)}",
                              headers={"Accept": INDEX})
    entries = _index(tagged) if tagged.status_code == 200 else None
    entries = entries or []
    if artifact_type:
        entries = [d for d in entries if d.get("artifactType") == artifact_type]
    return entries, "tag"


def push_blob(registry: Registry, name: str, data: bytes) -> dict[str, Any]:
    """Upload a blob monolithically (POST then PUT); its descriptor without media type."""
    digest = digest_of(data)
    start = registry.request("POST", f"/v2/{name}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = urljoin(registry.base, start.headers["Location"])
    done = registry.request("PUT", location + ("&" if "?" in location else "?")
                            + f"digest={digest}", data=data,
                            headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return {"digest": digest, "size": len(data)}


def descriptor(raw: bytes, manifest: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": manifest.get("mediaType", MANIFEST),
                           "digest": digest_of(raw), "size": len(raw)}
    artifact_type = manifest.get("artifactType") or manifest.get("config", {}).get("mediaType")
    if artifact_type:
        out["artifactType"] = artifact_type
    if manifest.get("annotations"):
        out["annotations"] = dict(manifest["annotations"])
    return out


def push_referrer(registry: Registry, name: str, manifest: dict[str, Any]) -> str:
    """Push a manifest with ``subject`` as the spec's client steps say; its digest."""
    raw = json.dumps(manifest).encode()
    digest = digest_of(raw)
    put = registry.request("PUT", f"/v2/{name}/manifests/{digest}", data=raw,
                           headers={"Content-Type": manifest["mediaType"]})
    assert put.status_code == 201, put.text
    subject = manifest["subject"]["digest"]
    if put.headers.get("OCI-Subject") == subject:
        return digest
    tag = referrers_tag(subject)
    current = registry.request("GET", f"/v2/{name}/manifests/{tag}", headers={"Accept": INDEX})
    if current.status_code == 404:
        body: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX, "manifests": []}
    else:
        assert current.status_code == 200 and _index(current) is not None, \
            f"{tag} is no referrers index"
        body = current.json()
    entry = descriptor(raw, manifest)
    if not any(d.get("digest") == digest for d in body["manifests"]):
        body["manifests"].append(entry)
        index = json.dumps(body).encode()
        put = registry.request("PUT", f"/v2/{name}/manifests/{tag}", data=index,
                               headers={"Content-Type": INDEX})
        assert put.status_code == 201, put.text
    return digest


def push_artifact(registry: Registry, name: str, subject: dict[str, Any], artifact_type: str,
                  payload: bytes, payload_type: str, annotations: dict[str, str]) -> str:
    """A minimal artifact (image-spec manifest.md "Guidelines for Artifact Usage": empty
    config, one layer) with ``subject``, pushed as a referrer; its digest."""
    empty = {"mediaType": EMPTY, **push_blob(registry, name, b"{}")}
    layer = {"mediaType": payload_type, **push_blob(registry, name, payload)}
    return push_referrer(registry, name, {
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": artifact_type,
        "config": empty, "layers": [layer], "subject": subject, "annotations": annotations})


def manifest(registry: Registry, name: str, reference: str) -> tuple[dict[str, Any], str, str]:
    """(body, media type, digest of the bytes) of a manifest or index."""
    got = registry.request("GET", f"/v2/{name}/manifests/{reference}",
                           headers={"Accept": f"{MANIFEST}, {INDEX}"})
    assert got.status_code == 200, (reference, got.status_code)
    return got.json(), got.headers.get("Content-Type", ""), digest_of(got.content)


def subject(registry: Registry, name: str, reference: str) -> dict[str, Any]:
    """The descriptor of what ``reference`` names, for a referrer's ``subject``."""
    got = registry.request("GET", f"/v2/{name}/manifests/{reference}",
                           headers={"Accept": f"{MANIFEST}, {INDEX}"})
    assert got.status_code == 200, (reference, got.status_code)
    return {"mediaType": got.headers["Content-Type"].split(";")[0],
            "digest": digest_of(got.content), "size": len(got.content)}


def blob(registry: Registry, name: str, digest: str) -> bytes:
    got = registry.request("GET", f"/v2/{name}/blobs/{digest}")
    if got.status_code in (301, 302, 307, 308):
        got = requests.get(urljoin(registry.base, got.headers["Location"]), timeout=TIMEOUT,
                           verify=registry.verify)
    assert got.status_code == 200
    assert digest_of(got.content) == digest
    return got.content
