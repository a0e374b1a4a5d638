"""How lamina's registry client authenticates to one registry, and where it refuses to.

The registry's challenge decides: Basic is sent once the registry asked for it; Bearer tokens
(Docker/GitLab ``/jwt/auth``) are fetched per repository scope and cached per (origin,
scope). Nothing authenticated leaves the registry's origin (scheme, host, port):

* a request to any other origin (an upload ``Location`` elsewhere, storage a blob GET is
  redirected to) gets neither the Basic header nor a token (:meth:`RegistryAuth.headers`);
* a token realm gets credentials only when the credential store binds some to the realm's
  host (the registry's own, or one named in an auth file or by ``CI_SERVER_URL``); otherwise
  the token is asked for anonymously, which is all a public registry needs;
* a realm must be https, unless the registry itself is a loopback plain-HTTP one and so is
  the realm (the test registries); any other realm is refused in one line.

Credentials come from :mod:`lamina.credentials` only; tokens are registered for redaction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import requests

from lamina import redact
from lamina.credentials import Credentials, CredentialStore
from lamina.errors import RegistryError
from lamina.http import TOKEN_MAX, BoundedSession, Origin, origin_of

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
Fetch = Callable[..., requests.Response]


def same_origin(url: str, origin: Origin) -> bool:
    try:
        return origin_of(url) == origin
    except ValueError:
        return False


def is_loopback(origin: Origin) -> bool:
    host = origin.host
    name = host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
    return name in LOOPBACK_HOSTS


class RegistryAuth:
    """The auth state of one registry client: its tokens and whether Basic was asked for."""

    def __init__(self, host: str, origin: Origin, credentials: CredentialStore,
                 session: BoundedSession) -> None:
        self.host = host
        self.origin = origin
        self.credentials = credentials
        self.session = session
        self._tokens: dict[tuple[Origin, str], str] = {}
        self._basic = False  # the registry asked for Basic once
        self._lock = threading.Lock()

    def credentials_for(self, repository: str) -> Credentials | None:
        return self.credentials.for_host(self.host, repository)

    def headers(self, url: str, scope: str, repository: str) -> dict[str, str]:
        """What authenticates a request to ``url``: nothing unless it is the registry's
        own origin."""
        if not same_origin(url, self.origin):
            return {}
        token = self._tokens.get((self.origin, scope))
        if token:
            return {"Authorization": f"Bearer {token}"}
        creds = self.credentials_for(repository)
        if self._basic and creds is not None:
            return {"Authorization": creds.basic()}
        return {}

    def answer(self, response: requests.Response, url: str, scope: str, repository: str,
               fetch: Fetch, *, sent_basic: bool) -> bool:
        """Answer a 401 from the registry's own origin; True when a retry is worth it
        (``sent_basic``: the refused request already carried Basic). ``fetch`` is the
        client's retried request (for the token service)."""
        if response.status_code != 401 or not same_origin(url, self.origin):
            return False
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("bearer"):
            token = self._token(challenge, scope, repository, fetch)
            with self._lock:
                self._tokens[(self.origin, scope)] = token
            return True
        if challenge.lower().startswith("basic") and self.credentials_for(repository):
            self._basic = True  # from now on sent up front, by every thread
            return not sent_basic
        return False

    def _realm(self, challenge: str) -> tuple[str, dict[str, str], Origin]:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.get("realm", "")
        if not realm:
            raise RegistryError(f"{self.host}: Bearer challenge without a realm")
        try:
            origin = origin_of(realm)
        except ValueError:
            raise RegistryError(f"{self.host}: token realm is not an http(s) URL without "
                                "credentials; refused") from None
        plain_ok = (self.origin.scheme == "http" and is_loopback(self.origin)
                    and is_loopback(origin))
        if origin.scheme != "https" and not plain_ok:
            raise RegistryError(f"{self.host}: token realm {origin} is not https (only a "
                                "loopback plain-HTTP registry may use a plain-HTTP realm); "
                                "refused")
        return realm, params, origin

    def _token(self, challenge: str, scope: str, repository: str, fetch: Fetch) -> str:
        realm, params, origin = self._realm(challenge)
        # the realm is the registry itself: its credentials for this repository; another
        # host: only what the store binds to that host
        creds = (self.credentials_for(repository) if origin.host == self.origin.host
                 else self.credentials.for_host(origin.host))
        headers = {}
        if creds is not None:
            with self._lock:
                self.session.credential_origins.add(origin)
            headers["Authorization"] = creds.basic()
        response = fetch("GET", realm, params={"service": params.get("service", ""),
                                               "scope": scope},
                         headers=headers, max_bytes=TOKEN_MAX)
        if response.status_code in (401, 403):
            who = "the credentials" if creds is not None else "an anonymous token request"
            raise RegistryError(f"{self.host}: the token service refused {who} "
                                f"({response.status_code})")
        if response.status_code != 200:
            raise RegistryError(f"{self.host}: token service answered {response.status_code}")
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) \
            else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.host}: token service gave no token")
        redact.register(token)
        return token
