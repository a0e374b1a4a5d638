"""HTTP to Harbor: Basic auth on every call, no cookies, one-line errors, bounded paging.

Requests go through :class:`lamina.http.BoundedSession` (deadline, body cap, no redirects,
credentials only to Harbor's own origin). Paging stops after :data:`MAX_PAGES` pages and
when a page repeats the one before it: a server whose ``Link`` always says ``next`` would
otherwise be read forever.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from lamina import redact
from lamina.errors import RegistryError, UsageError
from lamina.http import (
    BoundedSession,
    CredentialsRefused,
    DeadlineExceeded,
    ResponseTooLarge,
    http_timeout,
    origin_of,
)

API = "/api/v2.0"
MAX_PAGE_SIZE = 100
MAX_PAGES = 200  # 20 000 items at Harbor's largest page size
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
                 verify: bool | str = True, *, timeout: float | None = None,
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
        self.timeout = timeout if timeout is not None else http_timeout()
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        # the session refuses cookies (Harbor's CSRF check bites sessions that keep them)
        # and sends the Basic header to Harbor's own origin only
        self.session = BoundedSession(timeout=self.timeout,
                                      credential_origins={origin_of(self.base_url)})

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
                                        verify=self.verify)
        except (DeadlineExceeded, ResponseTooLarge, CredentialsRefused) as exc:
            raise RegistryError(f"Harbor {what}: {self.base_url}: {exc}") from None
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
        """All items of a list endpoint, page by page (see the module docstring on Link),
        at most :data:`MAX_PAGES` pages; a page equal to the one before ends in an error."""
        seen = 0
        previous: list[Any] | None = None
        for page in range(1, MAX_PAGES + 1):
            query = dict(params or {}, page=page, page_size=self.page_size)
            resp = self.request(what, "GET", path, params=query, headers=headers)
            try:
                items = resp.json() or []
            except ValueError:
                raise RegistryError(f"Harbor {what}: page {page} is not JSON") from None
            if not isinstance(items, list):
                raise RegistryError(f"Harbor {what}: expected a list, got {type(items).__name__}")
            if items and items == previous:
                raise RegistryError(f"Harbor {what}: page {page} repeats page {page - 1}; "
                                    "Harbor's paging does not advance")
            yield from items
            previous = items
            seen += len(items)
            total = resp.headers.get("X-Total-Count")
            more = _next_link(resp.headers.get("Link", ""))
            if not items or not more or (total and total.isdigit() and seen >= int(total)):
                return
        raise RegistryError(f"Harbor {what}: more than {MAX_PAGES} pages of "
                            f"{self.page_size}; refusing to read further")

    # ------------------------------------------------------------------ projects
