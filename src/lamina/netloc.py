"""Where a request goes and how long it may take: origins, ``host[:port]``, the deadline.

These are the names credentials are bound to (:mod:`lamina.credentials`) and the deadline
setting every tool call and request shares. They live apart from :mod:`lamina.http` because
that module is built on ``requests`` and ``urllib3``, whose import costs more than planning a
small tree does; the plan needs these names (an external parent's credentials, skopeo's
timeout), not an HTTP client. :mod:`lamina.http` re-exports them.
"""

from __future__ import annotations

import os
from typing import NamedTuple
from urllib.parse import urlsplit

from lamina.errors import UsageError

TIMEOUT_ENV = "LAMINA_HTTP_TIMEOUT"
DEFAULT_TIMEOUT = 60.0


class Origin(NamedTuple):
    """Scheme and ``host[:port]`` (default port dropped): where a request goes."""

    scheme: str
    host: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}"


def host_port(hostname: str, port: int | None, scheme: str = "https") -> str:
    """``host[:port]`` as lamina binds credentials to it: lower case, IPv6 in brackets, the
    scheme's default port left out (``https://h:443`` and ``https://h`` are one host)."""
    host = hostname.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = {"https": 443, "http": 80}.get(scheme)
    return host if port is None or port == default else f"{host}:{port}"


def origin_of(url: str) -> Origin:
    """The origin of an absolute http(s) URL; ValueError for anything else (or userinfo)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("a URL with credentials")
    return Origin(parts.scheme, host_port(parts.hostname, parts.port, parts.scheme))


def http_timeout() -> float:
    """The per-request deadline in seconds: ``LAMINA_HTTP_TIMEOUT``, default 60."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise UsageError(f"{TIMEOUT_ENV}={raw[:40]!r}: expected a number of seconds "
                         "between 0 and 86400")
    return value
