"""A small read-only registry client for the existence checks that make publishing make-like.

Moving bytes is skopeo's job; asking "does the registry already hold this key?" for every
(image, platform) must be cheap, so it is done here with plain HTTP: one manifest GET per
node, plus at most one token request per repository when the registry uses the Bearer flow
(Docker/GitLab ``/jwt/auth``). Basic auth is sent only after the registry asked for it, and
only over TLS or to a loopback address. Credentials are never part of a message or a log line.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

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
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class RemoteManifest:
    digest: str
    media_type: str
    body: dict[str, Any]

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body.get("annotations") or {})


@dataclass
class RegistryClient:
    """Read-only access to one registry host; thread-safe, so checks can run in parallel."""

    host: str
    credentials: Credentials | None = None
    verify: bool | str = True
    scheme: str = "https"
    timeout: float = 20.0
    requests_made: int = 0
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)
    _basic: bool = field(default=False, repr=False)  # the registry asked for Basic once
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        if self.credentials is not None:
            redact.register(self.credentials.password)

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        with self._lock:
            self.requests_made += 1
        try:
            return self._session.request(method, url, timeout=self.timeout,
                                         verify=self.verify, **kwargs)
        except requests.exceptions.SSLError:
            raise RegistryError(f"{self.host}: TLS verification failed (give the registry's CA "
                                "with --cert-dir)") from None
        except requests.RequestException as exc:
            raise RegistryError(f"{self.host}: {type(exc).__name__} while contacting the "
                                "registry") from None

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

    def _authorized_get(self, repository: str, path: str, headers: dict[str, str]
                        ) -> requests.Response:
        url = f"{self.scheme}://{self.host}/v2/{repository}/{path}"
        scope = f"repository:{repository}:pull"
        token = self._tokens.get(scope)
        sent = dict(headers)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if self._basic and self.credentials is not None:
            return self._request("GET", url, headers=headers,
                                 auth=(self.credentials.username, self.credentials.password))
        response = self._request("GET", url, headers=sent)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("bearer"):
            token = self._token(challenge, scope)
            with self._lock:
                self._tokens[scope] = token
            sent["Authorization"] = f"Bearer {token}"
            return self._request("GET", url, headers=sent)
        if challenge.lower().startswith("basic") and self.credentials is not None:
            self._basic = True
            return self._request("GET", url, headers=headers,
                                 auth=(self.credentials.username, self.credentials.password))
        return response

    def manifest(self, repository: str, reference: str) -> RemoteManifest | None:
        """The manifest ``repository:reference`` names now, or None when it is absent."""
        response = self._authorized_get(repository, f"manifests/{reference}",
                                        {"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        if response.status_code == 401:
            raise RegistryError(f"{self.host}/{repository}: unauthorized (set "
                                "LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables, or "
                                "--authfile)")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}/{repository}:{reference}: registry answered "
                                f"{response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise RegistryError(f"{self.host}/{repository}:{reference}: manifest is not "
                                "JSON") from None
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = str(body.get("mediaType") or response.headers.get("Content-Type", ""))
        return RemoteManifest(digest, media_type, body)
