"""A loopback OCI registry WITH the referrers API, in memory, over TLS.

A fake, and only because no registry implementing distribution-spec 1.1's referrers API
runs on this machine: Debian's docker-registry (distribution 2.8), the real registry every
other publish test uses, has none (it answers ``/v2/<name>/referrers/<digest>`` with 404),
and zot, Harbor or distribution 3 cannot be installed here. It answers as
opencontainers/distribution-spec ``spec.md`` (967efdc) says and nothing more:

* "Pushing Manifests with Subject": a manifest PUT whose body has a ``subject`` is answered
  ``201`` with ``OCI-Subject: <subject digest>``;
* "Listing Referrers": ``GET /v2/<name>/referrers/<digest>`` is 200 with an image index of
  every manifest in ``<name>`` whose ``subject`` is ``<digest>`` (``artifactType`` from the
  manifest, else its config's media type, omitted for an index without one; the manifest's
  annotations), empty when there are none, 400 for a malformed digest; ``?artifactType=``
  filters and says so in ``OCI-Filters-Applied``; with ``page_size`` set, the list comes in
  pages of that many, each but the last with ``Link: <...>; rel="next"`` (RFC 5988, as the
  spec says); ``endless_pages`` and ``next_elsewhere`` make it misbehave (every page links
  a next one; the next page is on another host:port);
* the rest of the API lamina and skopeo use (``/v2/``, blob HEAD/GET/upload, manifest
  HEAD/GET/PUT by tag or digest with ``Docker-Content-Digest``), enough to publish and pull.

Every request is recorded (method, path) so a test can count manifest PUTs.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.publish.hostile_registry import _Base, _Server, self_signed

INDEX = "application/vnd.oci.image.index.v1+json"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ReferrersRegistry:
    tls_dir: Path
    seen: list[tuple[str, str]] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    # (name, reference) -> (bytes, media type); a manifest is stored by digest and tag
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    page_size: int | None = None
    endless_pages: bool = False
    next_elsewhere: str | None = None  # "host:port" the next page link points at

    def __post_init__(self) -> None:
        owner = self
        lock = threading.Lock()

        class Handler(_Base):
            def _route(self) -> None:
                self.owner = owner
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with lock:
                    owner.seen.append((self.command, parts.path))
                path = parts.path
                if path == "/v2/":
                    self.reply(200, b"{}", {"Content-Type": "application/json"})
                    return
                match = re.match(r"^/v2/(.+)/(manifests|blobs|referrers)/(.+)$", path)
                if match is None:
                    self.reply(404)
                    return
                name, kind, rest = match.groups()
                with lock:
                    if kind == "manifests":
                        self._manifest(name, rest)
                    elif kind == "referrers":
                        self._referrers(name, rest, parse_qs(parts.query))
                    elif rest.startswith("uploads"):
                        self._upload(name, parse_qs(parts.query))
                    else:
                        self._blob(rest)

            def _manifest(self, name: str, reference: str) -> None:
                if self.command == "PUT":
                    digest = _digest(self.body)
                    entry = (self.body, self.headers.get("Content-Type", ""))
                    owner.manifests[(name, reference)] = entry
                    owner.manifests[(name, digest)] = entry
                    headers = {"Docker-Content-Digest": digest,
                               "Location": f"/v2/{name}/manifests/{digest}"}
                    subject = json.loads(self.body).get("subject")
                    if isinstance(subject, dict) and subject.get("digest"):
                        headers["OCI-Subject"] = str(subject["digest"])
                    self.reply(201, headers=headers)
                    return
                found = owner.manifests.get((name, reference))
                if found is None:
                    self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}',
                               {"Content-Type": "application/json"})
                    return
                raw, media_type = found
                self.reply(200, raw, {"Content-Type": media_type,
                                      "Docker-Content-Digest": _digest(raw)})

            def _referrers(self, name: str, digest: str, query: dict[str, list[str]]) -> None:
                if not DIGEST.match(digest):
                    self.reply(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                    return
                wanted = query.get("artifactType", [None])[0]
                listed, seen_digests = [], set()
                for (stored_name, _), (raw, media_type) in owner.manifests.items():
                    body = json.loads(raw)
                    own = _digest(raw)
                    if stored_name != name or own in seen_digests or \
                            (body.get("subject") or {}).get("digest") != digest:
                        continue
                    seen_digests.add(own)
                    entry = {"mediaType": body.get("mediaType", media_type), "digest": own,
                             "size": len(raw)}
                    artifact_type = body.get("artifactType")
                    if not artifact_type and entry["mediaType"] != INDEX:
                        artifact_type = (body.get("config") or {}).get("mediaType")
                    if artifact_type:
                        entry["artifactType"] = artifact_type
                    if body.get("annotations"):
                        entry["annotations"] = body["annotations"]
                    if wanted is None or entry.get("artifactType") == wanted:
                        listed.append(entry)
                headers = {"Content-Type": INDEX}
                if wanted is not None:
                    headers["OCI-Filters-Applied"] = "artifactType"
                page = int(query.get("page", ["0"])[0])
                size = owner.page_size
                if size is not None:
                    more = owner.endless_pages or len(listed) > (page + 1) * size
                    listed = listed[page * size:(page + 1) * size]
                    if more:
                        where = (f"https://{owner.next_elsewhere}" if owner.next_elsewhere
                                 else "")
                        headers["Link"] = (f'<{where}/v2/{name}/referrers/{digest}'
                                           f'?page={page + 1}>; rel="next"')
                self.reply(200, json.dumps({"schemaVersion": 2, "mediaType": INDEX,
                                            "manifests": listed}).encode(), headers)

            def _upload(self, name: str, query: dict[str, list[str]]) -> None:
                if self.command == "POST":
                    mount = query.get("mount", [""])[0]
                    if mount in owner.blobs:
                        self.reply(201, headers={"Docker-Content-Digest": mount})
                        return
                    self.reply(202, headers={
                        "Location": f"/v2/{name}/blobs/uploads/{uuid.uuid4().hex}"})
                    return
                digest = query.get("digest", [""])[0]
                if _digest(self.body) != digest:
                    self.reply(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                    return
                owner.blobs[digest] = self.body
                self.reply(201, headers={"Docker-Content-Digest": digest})

            def _blob(self, digest: str) -> None:
                if digest not in owner.blobs:
                    self.reply(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
                    return
                self.reply(200, owner.blobs[digest], {
                    "Content-Type": "application/octet-stream",
                    "Docker-Content-Digest": digest})

            do_GET = do_HEAD = do_POST = do_PUT = _route

        self.server = _Server(("127.0.0.1", 0), Handler)
        cert, key = self_signed(self.tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def manifest_puts(self) -> list[str]:
        return [path for method, path in self.seen
                if method == "PUT" and "/manifests/" in path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
