"""lamina's own OCI distribution client: existence checks, and digest-preserving pushes.

Why not only skopeo: a registry behind a flaky load balancer answers 502 or drops the
connection now and then, and skopeo retries a whole copy, never the one request that
failed, so one bad answer in ~10 requests fails the copy. Here every request is retried on
its own (502/503/504, connection errors; bounded, exponential backoff) and counted, uploads
restart from "does the blob exist?" so a retry never duplicates work, and blobs are mounted
from the parent image's repository instead of uploaded again. Pulls still go through skopeo.

Auth is :mod:`lamina.registry_auth` (nothing authenticated leaves the registry's origin);
redirects of GET/HEAD (blob storage) are followed here, at most :data:`MAX_REDIRECTS`, never
by ``requests``. Every request goes through :class:`lamina.http.BoundedSession` (deadline,
body caps: manifests 4 MiB as containers/image). A passed deadline marks the client broken:
later requests fail at once instead of each waiting out its own deadline.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from lamina import redact
from lamina.credentials import CredentialStore
from lamina.errors import RegistryError, UsageError
from lamina.http import (
    API_MAX,
    MANIFEST_MAX,
    BoundedSession,
    DeadlineExceeded,
    ResponseTooLarge,
    http_timeout,
    origin_of,
    upload_deadline,
)
from lamina.registry_auth import RegistryAuth

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
TRANSIENT_STATUS = (502, 503, 504)
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
MAX_REFERRER_PAGES = 20


@dataclass(frozen=True)
class RemoteManifest:
    digest: str
    media_type: str
    body: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body.get("annotations") or {})


def _default_retries() -> int:
    """``LAMINA_REGISTRY_RETRIES`` (default 8); a value that is not a count is refused, as a
    bad ``LAMINA_HTTP_TIMEOUT`` is, rather than silently replaced by the default."""
    raw = os.environ.get("LAMINA_REGISTRY_RETRIES", "").strip()
    if not raw:
        return 8
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise UsageError(f"LAMINA_REGISTRY_RETRIES={raw[:40]!r}: expected a whole number of "
                         "retries between 0 and 100")
    return value


def _next_link(header: str) -> str:
    """The target of ``rel="next"`` in a ``Link`` header (RFC 8288), or ""."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        target = target.strip()
        if target.startswith("<") and target.endswith(">") and any(
                p.strip().replace(" ", "") in ('rel="next"', "rel=next")
                for p in params.split(";")):
            return target[1:-1]
    return ""


def _path(url: str) -> str:
    """A URL's path for a message: no query (upload URLs carry state and may carry tokens)."""
    return "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


@dataclass
class RegistryClient:
    """One registry host; thread-safe, so checks and uploads can run in parallel."""

    host: str
    credentials: CredentialStore = field(default_factory=CredentialStore)
    verify: bool | str = True
    scheme: str = "https"
    timeout: float = field(default_factory=http_timeout)
    max_retries: int = field(default_factory=_default_retries)
    backoff: float = 0.2
    requests_made: int = 0
    retries_used: int = 0
    bytes_uploaded: int = 0
    _broken: str = field(default="", repr=False)  # a deadline passed: fail fast from now on
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.origin = origin_of(f"{self.scheme}://{self.host}")
        self._session = BoundedSession(timeout=self.timeout, credential_origins={self.origin})
        self._auth = RegistryAuth(self.host, self.origin, self.credentials, self._session)

    # -- transport ---------------------------------------------------------------------
    def _count(self, requests_made: int = 0, retries: int = 0, uploaded: int = 0) -> None:
        with self._lock:
            self.requests_made += requests_made
            self.retries_used += retries
            self.bytes_uploaded += uploaded

    def _request(self, method: str, url: str, body: Callable[[], Any] | None = None, *,
                 max_bytes: int = API_MAX, deadline: float | None = None,
                 **kwargs: Any) -> requests.Response:
        """One request, retried on transient failures. ``body`` makes a fresh payload per
        attempt (a file must be reopened). A passed deadline or an oversized answer is not
        retried: the next attempt would be as slow or as large."""
        attempt = 0
        while True:
            if self._broken:
                raise RegistryError(self._broken)
            self._count(requests_made=1)
            try:
                data = body() if body is not None else None
                try:
                    response = self._session.request(method, url, verify=self.verify,
                                                     data=data, max_bytes=max_bytes,
                                                     deadline=deadline, **kwargs)
                finally:
                    close = getattr(data, "close", None)
                    if close is not None:
                        close()
            except DeadlineExceeded as exc:
                self._broken = f"{self.host}: {exc}"
                raise RegistryError(self._broken) from None
            except ResponseTooLarge as exc:
                raise RegistryError(f"{self.host}: {method} {_path(url)}: {exc}") from None
            except requests.exceptions.SSLError:
                raise RegistryError(f"{self.host}: TLS verification failed (give the "
                                    "registry's CA with --cert-dir)") from None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if attempt >= self.max_retries:
                    raise RegistryError(f"{self.host}: {type(exc).__name__} after "
                                        f"{attempt + 1} attempts") from None
            except requests.RequestException as exc:  # refused URL or credentials
                raise RegistryError(redact.redact(f"{self.host}: {exc}")[:300]) from None
            else:
                if response.status_code not in TRANSIENT_STATUS or attempt >= self.max_retries:
                    return response
            attempt += 1
            self._count(retries=1)
            time.sleep(min(self.backoff * 2 ** (attempt - 1), 3.0))

    def _call(self, method: str, repository: str, url: str, *, push: bool = False,
              headers: dict[str, str] | None = None, body: Callable[[], Any] | None = None,
              **kwargs: Any) -> requests.Response:
        """A request under ``repository``'s auth scope, answering the registry's challenge
        (at the registry's origin only) and following GET/HEAD redirects without auth."""
        url = urljoin(f"{self.scheme}://{self.host}/", url)
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        base = dict(headers or {})

        sent: dict[str, str] = {}

        def send(to: str) -> requests.Response:
            sent.clear()
            sent.update(self._auth.headers(to, scope, repository))
            return self._request(method, to, body=body, headers={**base, **sent}, **kwargs)

        response = send(url)
        basic = sent.get("Authorization", "").startswith("Basic ")
        if self._auth.answer(response, url, scope, repository, self._request,
                             sent_basic=basic):
            response = send(url)
        hops = 0
        while response.status_code in REDIRECTS and method in ("GET", "HEAD"):
            if hops >= MAX_REDIRECTS:
                raise RegistryError(f"{self.host}: more than {MAX_REDIRECTS} redirects for "
                                    f"{_path(url)}")
            hops += 1
            url = urljoin(url, response.headers.get("Location", ""))
            response = send(url)
        return response

    def _fail(self, response: requests.Response, what: str) -> RegistryError:
        if response.status_code == 401:
            return RegistryError(f"{self.host}: {what}: unauthorized (set "
                                 "LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables, or "
                                 "--authfile)")
        detail = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}"
        return RegistryError(redact.redact(
            f"{self.host}: {what}: registry answered {response.status_code}{detail}"[:300]))

    # -- reading -----------------------------------------------------------------------
    def manifest(self, repository: str, reference: str) -> RemoteManifest | None:
        """The manifest ``repository:reference`` names now, or None when it is absent."""
        response = self._call("GET", repository, f"/v2/{repository}/manifests/{reference}",
                              headers={"Accept": MANIFEST_TYPES}, max_bytes=MANIFEST_MAX)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"{repository}:{reference}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryError(f"{self.host}/{repository}:{reference}: manifest is not a "
                                "JSON object")
        # the digest of the bytes received, not the registry's word for it
        digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        media_type = str(body.get("mediaType") or response.headers.get("Content-Type", ""))
        return RemoteManifest(digest, media_type, body)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        found = self.manifest(repository, reference)
        return found.digest if found else None

    def blob(self, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob's bytes, checked against its digest (reports, not layers); storage
        behind a redirect gets the request without credentials."""
        response = self._call("GET", repository, f"/v2/{repository}/blobs/{digest}",
                              max_bytes=limit)
        if response.status_code != 200:
            raise self._fail(response, f"blob {digest[:19]} in {repository}")
        data = response.content
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{self.host}: blob {digest[:19]} in {repository} does not "
                                "match its digest")
        return data

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._call("HEAD", repository, f"/v2/{repository}/blobs/{digest}",
                              push=True)
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise self._fail(response, f"check blob {digest[:19]} in {repository}")

    # -- writing -----------------------------------------------------------------------
    def push_blob(self, repository: str, digest: str, source: Path | bytes,
                  mount_from: str | None = None) -> bool:
        """Make ``digest`` exist in ``repository``; True when bytes were uploaded.

        ``source`` is a file or, for small documents lamina makes on the fly (an artifact's
        empty config, a per-image SBOM), the bytes themselves: nothing is written to the
        store for them. Starts from the existence check every time, so a retried or resumed
        push never uploads a blob twice; a blob the parent's repository holds is mounted,
        not sent.
        """
        if isinstance(source, bytes):
            data = source

            def body() -> Any:
                return io.BytesIO(data)
            size = len(data)
        else:
            path = source

            def body() -> Any:
                return path.open("rb")
            size = path.stat().st_size
        for _ in range(self.max_retries + 1):
            if self.blob_exists(repository, digest):
                return False
            query = f"?mount={digest}&from={mount_from}" if mount_from else ""
            start = self._call("POST", repository, f"/v2/{repository}/blobs/uploads/{query}",
                               push=True, headers={"Content-Length": "0"})
            if start.status_code == 201:
                return False  # mounted from the parent's repository
            if start.status_code != 202:
                raise self._fail(start, f"start upload of {digest[:19]} to {repository}")
            # the Location may be on another origin (storage): _call sends it no credentials
            location = urljoin(f"{self.scheme}://{self.host}/",
                               start.headers.get("Location", ""))
            separator = "&" if "?" in location else "?"
            done = self._call("PUT", repository, f"{location}{separator}digest={digest}",
                              push=True, body=body,
                              headers={"Content-Type": "application/octet-stream",
                                       "Content-Length": str(size)},
                              deadline=upload_deadline(size, self.timeout))
            if done.status_code == 201:
                self._count(uploaded=size)
                return True
            if done.status_code == 404:
                continue  # the upload session was lost (a retried PUT): check and start over
            raise self._fail(done, f"upload {digest[:19]} to {repository}")
        raise RegistryError(f"{self.host}: upload of {digest[:19]} to {repository} did not "
                            "complete")

    def push_manifest(self, repository: str, reference: str, raw: bytes,
                      media_type: str) -> Mapping[str, str]:
        """PUT a manifest under a tag or its digest; returns the answer's headers (a
        registry with the referrers API answers ``OCI-Subject`` for a manifest with a
        ``subject``, distribution-spec "Pushing Manifests with Subject")."""
        response = self._call("PUT", repository, f"/v2/{repository}/manifests/{reference}",
                              push=True, body=lambda: raw,
                              headers={"Content-Type": media_type},
                              deadline=upload_deadline(len(raw), self.timeout))
        if response.status_code not in (200, 201):
            raise self._fail(response, f"push {repository}:{reference}")
        return response.headers

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """The descriptors the referrers API lists for ``digest``, or None when the
        registry has no referrers API (it answers 404: distribution-spec "Listing
        Referrers": a registry that supports it MUST NOT return 404, and a client MUST then
        fall back to the referrers tag schema). A 200 that is not an image index is not
        the API either. Pages (``Link: <...>; rel="next"``) are followed, at most
        :data:`MAX_REFERRER_PAGES`, and only on this registry's origin."""
        url = f"{self.scheme}://{self.host}/v2/{repository}/referrers/{digest}"
        found: list[dict[str, Any]] = []
        for _ in range(MAX_REFERRER_PAGES):
            response = self._call("GET", repository, url,
                                  headers={"Accept": OCI_INDEX}, max_bytes=MANIFEST_MAX)
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise self._fail(response, f"referrers of {digest[:19]} in {repository}")
            try:
                body = response.json()
            except ValueError:
                return None
            manifests = body.get("manifests") if isinstance(body, dict) else None
            if not isinstance(manifests, list):
                return None
            found += [d for d in manifests if isinstance(d, dict)]
            following = _next_link(response.headers.get("Link", ""))
            if not following:
                return found
            absolute = urljoin(url, following)  # relative to the page that named it
            if origin_of(absolute) != self.origin:
                raise RegistryError(f"{self.host}: referrers of {digest[:19]} page to "
                                    "another origin")
            url = absolute
        raise RegistryError(f"{self.host}: referrers of {digest[:19]} in {repository}: more "
                            f"than {MAX_REFERRER_PAGES} pages")

    def push_from_layout(self, layout: Path, manifest_digest: str, repository: str,
                         reference: str, mount_from: str | None = None) -> int:
        """Push a manifest or index of an OCI layout, children and blobs first, digests
        unchanged; returns the bytes uploaded. ``reference`` is a tag or the digest."""
        def blob(digest: str) -> Path:
            algo, _, hexpart = digest.partition(":")
            return layout / "blobs" / algo / hexpart

        before = self.bytes_uploaded
        raw = blob(manifest_digest).read_bytes()
        document = json.loads(raw)
        media_type = str(document.get("mediaType")
                         or "application/vnd.oci.image.manifest.v1+json")
        if "manifests" in document:
            for child in document["manifests"]:
                if self.manifest_digest(repository, child["digest"]) != child["digest"]:
                    self.push_from_layout(layout, child["digest"], repository,
                                          child["digest"], mount_from)
        else:
            for desc in [document["config"], *document.get("layers", [])]:
                self.push_blob(repository, desc["digest"], blob(desc["digest"]), mount_from)
        self.push_manifest(repository, reference, raw, media_type)
        return self.bytes_uploaded - before
