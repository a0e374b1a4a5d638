"""lamina's own OCI distribution client: existence checks, and digest-preserving pushes.

Why not only skopeo: a registry behind a flaky load balancer answers 502 or drops the
connection now and then, and skopeo retries a whole copy, never the one request that
failed, so one bad answer in ~10 requests fails the copy. Here every request is retried on
its own (502/503/504, connection errors; bounded, exponential backoff) and counted, uploads
restart from "does the blob exist?" so a retry never duplicates work, and blobs are mounted
from the parent image's repository instead of uploaded again. Pulls still go through skopeo.

Auth: the registry's challenge decides. Basic is sent once the registry asked for it;
Bearer tokens (Docker/GitLab ``/jwt/auth``) are fetched per repository scope and cached.
Credentials and tokens are registered for redaction and never appear in a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from lamina import redact
from lamina.errors import RegistryError
from lamina.registry_auth import Credentials

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
TRANSIENT_STATUS = (502, 503, 504)
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class RemoteManifest:
    digest: str
    media_type: str
    body: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body.get("annotations") or {})


def _default_retries() -> int:
    try:
        return max(0, int(os.environ.get("LAMINA_REGISTRY_RETRIES", "8")))
    except ValueError:
        return 8


@dataclass
class RegistryClient:
    """One registry host; thread-safe, so checks and uploads can run in parallel."""

    host: str
    credentials: Credentials | None = None
    verify: bool | str = True
    scheme: str = "https"
    timeout: float = 60.0
    max_retries: int = field(default_factory=_default_retries)
    backoff: float = 0.2
    requests_made: int = 0
    retries_used: int = 0
    bytes_uploaded: int = 0
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _basic: bool = field(default=False, repr=False)  # the registry asked for Basic once
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        if self.credentials is not None:
            redact.register(self.credentials.password)

    # -- transport ---------------------------------------------------------------------
    def _count(self, requests_made: int = 0, retries: int = 0, uploaded: int = 0) -> None:
        with self._lock:
            self.requests_made += requests_made
            self.retries_used += retries
            self.bytes_uploaded += uploaded

    def _request(self, method: str, url: str, body: Callable[[], Any] | None = None,
                 **kwargs: Any) -> requests.Response:
        """One request, retried on transient failures. ``body`` makes a fresh payload per
        attempt (a file must be reopened)."""
        attempt = 0
        while True:
            self._count(requests_made=1)
            try:
                data = body() if body is not None else None
                try:
                    response = self._session.request(method, url, timeout=self.timeout,
                                                     verify=self.verify, data=data,
                                                     allow_redirects=False, **kwargs)
                finally:
                    close = getattr(data, "close", None)
                    if close is not None:
                        close()
            except requests.exceptions.SSLError:
                raise RegistryError(f"{self.host}: TLS verification failed (give the "
                                    "registry's CA with --cert-dir)") from None
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as exc:
                if attempt >= self.max_retries:
                    raise RegistryError(f"{self.host}: {type(exc).__name__} after "
                                        f"{attempt + 1} attempts") from None
            else:
                if response.status_code not in TRANSIENT_STATUS or attempt >= self.max_retries:
                    return response
            attempt += 1
            self._count(retries=1)
            time.sleep(min(self.backoff * 2 ** (attempt - 1), 3.0))

    def _token(self, challenge: str, scope: str) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.host}: Bearer challenge without a realm")
        query = {"service": params.get("service", ""), "scope": scope}
        auth = ((self.credentials.username, self.credentials.password)
                if self.credentials else None)
        response = self._request("GET", realm, params=query, auth=auth)
        if response.status_code in (401, 403):
            raise RegistryError(f"{self.host}: the token service refused the credentials "
                                f"({response.status_code})")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}: token service answered {response.status_code}")
        data = response.json()
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str):
            raise RegistryError(f"{self.host}: token service gave no token")
        redact.register(token)
        return token

    def _call(self, method: str, repository: str, url: str, *, push: bool = False,
              headers: dict[str, str] | None = None, body: Callable[[], Any] | None = None,
              **kwargs: Any) -> requests.Response:
        """A request under ``repository``'s auth scope, answering the registry's challenge."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.scheme}://{self.host}{url}"
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        sent = dict(headers or {})
        auth = None
        token = self._tokens.get(scope)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        elif self._basic and self.credentials is not None:
            auth = (self.credentials.username, self.credentials.password)
        response = self._request(method, url, body=body, headers=sent, auth=auth, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("bearer"):
            token = self._token(challenge, scope)
            with self._lock:
                self._tokens[scope] = token
            sent["Authorization"] = f"Bearer {token}"
            return self._request(method, url, body=body, headers=sent, **kwargs)
        if challenge.lower().startswith("basic") and self.credentials is not None and not auth:
            self._basic = True
            return self._request(method, url, body=body, headers=sent,
                                 auth=(self.credentials.username, self.credentials.password),
                                 **kwargs)
        return response

    def _fail(self, response: requests.Response, what: str) -> RegistryError:
        if response.status_code == 401:
            return RegistryError(f"{self.host}: {what}: unauthorized (set "
                                 "LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables, or "
                                 "--authfile)")
        detail = ""
        try:
            errors = response.json().get("errors") or []
            if errors:
                detail = f": {errors[0].get('code', '')} {errors[0].get('message', '')}"
        except ValueError:
            pass
        return RegistryError(redact.redact(
            f"{self.host}: {what}: registry answered {response.status_code}{detail}"[:300]))

    # -- reading -----------------------------------------------------------------------
    def manifest(self, repository: str, reference: str) -> RemoteManifest | None:
        """The manifest ``repository:reference`` names now, or None when it is absent."""
        response = self._call("GET", repository, f"/v2/{repository}/manifests/{reference}",
                              headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"{repository}:{reference}")
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"{self.host}/{repository}:{reference}: manifest is not "
                                "JSON") from None
        digest = (response.headers.get("Docker-Content-Digest")
                  or "sha256:" + hashlib.sha256(response.content).hexdigest())
        media_type = str(body.get("mediaType") or response.headers.get("Content-Type", ""))
        return RemoteManifest(digest, media_type, body)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        found = self.manifest(repository, reference)
        return found.digest if found else None

    def blob(self, repository: str, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob's bytes, checked against its digest (reports, not layers)."""
        response = self._call("GET", repository, f"/v2/{repository}/blobs/{digest}")
        if response.status_code in (301, 302, 303, 307, 308):  # storage behind a redirect
            response = self._request("GET", urljoin(f"{self.scheme}://{self.host}/",
                                                    response.headers.get("Location", "")))
        if response.status_code != 200:
            raise self._fail(response, f"blob {digest[:19]} in {repository}")
        data = response.content[:limit + 1]
        if len(data) > limit or "sha256:" + hashlib.sha256(data).hexdigest() != digest:
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
    def push_blob(self, repository: str, digest: str, path: Path,
                  mount_from: str | None = None) -> bool:
        """Make ``digest`` exist in ``repository``; True when bytes were uploaded.

        Starts from the existence check every time, so a retried or resumed push never
        uploads a blob twice; a blob the parent's repository holds is mounted, not sent.
        """
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
            location = urljoin(f"{self.scheme}://{self.host}/",
                               start.headers.get("Location", ""))
            separator = "&" if "?" in location else "?"
            size = path.stat().st_size
            done = self._call("PUT", repository, f"{location}{separator}digest={digest}",
                              push=True, body=lambda: path.open("rb"),
                              headers={"Content-Type": "application/octet-stream",
                                       "Content-Length": str(size)})
            if done.status_code == 201:
                self._count(uploaded=size)
                return True
            if done.status_code == 404:
                continue  # the upload session was lost (a retried PUT): check and start over
            raise self._fail(done, f"upload {digest[:19]} to {repository}")
        raise RegistryError(f"{self.host}: upload of {digest[:19]} to {repository} did not "
                            "complete")

    def push_manifest(self, repository: str, reference: str, raw: bytes,
                      media_type: str) -> None:
        response = self._call("PUT", repository, f"/v2/{repository}/manifests/{reference}",
                              push=True, body=lambda: raw,
                              headers={"Content-Type": media_type})
        if response.status_code not in (200, 201):
            raise self._fail(response, f"push {repository}:{reference}")

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
