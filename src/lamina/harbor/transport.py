"""HTTP to Harbor: Basic auth on every call, no cookies, one-line errors, paging."""

from __future__ import annotations

import base64
import http.cookiejar
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from lamina import redact
from lamina.errors import RegistryError, UsageError

API = "/api/v2.0"
MAX_PAGE_SIZE = 100
_HINTS = {
    401: "check LAMINA_HARBOR_USERNAME/LAMINA_HARBOR_PASSWORD (a robot name keeps its "
         "literal '$')",
    403: "the account lacks this permission in Harbor",
    412: "a Harbor policy forbids this (e.g. an immutable tag)",
}


def encode_repository(name: str) -> str:
    """Harbor wants ``/`` in repository names URL-encoded twice: ``a/b`` -> ``a%252Fb``."""
    return quote(quote(name, safe=""), safe="")


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _no_cookies() -> http.cookiejar.DefaultCookiePolicy:
    # An empty allow-list refuses every domain: Set-Cookie is ignored, nothing is ever sent.
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


def _next_link(header: str) -> bool:
    return any(re.search(r';\s*rel="?next"?', part) for part in header.split(","))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def id_from_location(resp: requests.Response) -> int | None:
    match = re.search(r"/(\d+)/?$", resp.headers.get("Location", ""))
    return int(match.group(1)) if match else None


class HarborTransport:
    """Stateless Basic-auth calls against one Harbor: no cookies, one-line errors, paging
    (see the package docstring for why)."""

    def __init__(self, base_url: str, username: str, password: str,
                 verify: bool | str = True, *, timeout: float = 30.0,
                 page_size: int = MAX_PAGE_SIZE) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"Harbor URL must look like https://harbor.example.org, "
                             f"not '{_one_line(base_url, 80)}'")
        if parts.username or parts.password:
            raise UsageError("Harbor URL must not contain credentials; use "
                             "LAMINA_HARBOR_USERNAME and LAMINA_HARBOR_PASSWORD")
        if not username or not password:
            raise UsageError("Harbor credentials missing: set LAMINA_HARBOR_USERNAME and "
                             "LAMINA_HARBOR_PASSWORD")
        redact.register(password)
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = _basic(username, password)
        self.verify = verify
        self.timeout = timeout
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.session = requests.Session()
        self.session.cookies.set_policy(_no_cookies())

    # ------------------------------------------------------------------ transport
    def request(self, what: str, method: str, path: str, *,
                params: Mapping[str, str | int] | None = None, body: Any = None,
                ok: Sequence[int] = (200,), headers: Mapping[str, str] | None = None
                ) -> requests.Response:
        """One API call; any status outside ``ok`` becomes a one-line RegistryError."""
        url = f"{self.base_url}{API}{path}"
        sent = {"Authorization": self._auth, "Accept": "application/json"}
        sent.update(headers or {})
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
            resp = self.session.request(method, url, params=params, json=body, headers=sent,
                                        verify=self.verify, timeout=self.timeout,
                                        allow_redirects=False)
        except requests.exceptions.SSLError:
            raise RegistryError(f"Harbor {what}: TLS verification of {self.base_url} failed "
                                f"(pass --ca-bundle FILE with the site CA)") from None
        except requests.RequestException as exc:
            raise RegistryError(f"Harbor {what}: cannot reach {self.base_url} "
                                f"({type(exc).__name__})") from None
        self.session.cookies.clear()  # belt and braces: the policy already refuses them
        if resp.status_code in ok:
            return resp
        raise self._error(what, resp)

    def _error(self, what: str, resp: requests.Response) -> RegistryError:
        status = resp.status_code
        if 300 <= status < 400:
            where = resp.headers.get("Location", "?")
            return RegistryError(f"Harbor {what}: {status} redirect to {where}; "
                                 f"use that address as --url")
        detail = ""
        try:
            errors = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors
                               if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = resp.text if status < 500 else ""
        reason = resp.reason or ""
        text = f"Harbor {what}: {status} {reason}".rstrip()
        if detail:
            text += f": {detail}"
        hint = _HINTS.get(status)
        if status == 403 and "csrf" in detail.lower():
            hint = "a session cookie was sent back to Harbor; API calls must not keep cookies"
        if hint:
            text += f" ({hint})"
        return RegistryError(redact.redact(_one_line(text, 400)))

    def paged(self, what: str, path: str, params: Mapping[str, str | int] | None = None,
              headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """All items of a list endpoint, page by page (see the module docstring on Link)."""
        page = 1
        seen = 0
        while True:
            query = dict(params or {}, page=page, page_size=self.page_size)
            resp = self.request(what, "GET", path, params=query, headers=headers)
            items = resp.json() or []
            if not isinstance(items, list):
                raise RegistryError(f"Harbor {what}: expected a list, got {type(items).__name__}")
            yield from items
            seen += len(items)
            total = resp.headers.get("X-Total-Count")
            more = _next_link(resp.headers.get("Link", ""))
            if not items or not more or (total and total.isdigit() and seen >= int(total)):
                return
            page += 1

    # ------------------------------------------------------------------ projects
