"""Go's ``net/url.Parse``, as far as DUCC reads it: scheme, host and (unescaped) path.

DUCC's ``ParseImage`` (``ducc/lib/parse.go``) hands every wishlist line to ``url.Parse`` and
then splits ``URL.Path`` on ``:`` and ``@``. What Go accepts, rejects, lower-cases or
unescapes therefore decides what DUCC makes of a line: the scheme is lower-cased, the host is
kept as written (case included, IPv6 literals in brackets), ``%XX`` in the path is decoded
before the split, a ``?query`` and a ``#fragment`` are cut off, and a line without ``//`` after
the scheme has no host at all. This module follows ``src/net/url/url.go`` of the Go tree
(``Parse``, ``parse``, ``getScheme``, ``parseAuthority``, ``parseHost``, ``unescape``,
``validUserinfo``, ``validOptionalPort``); the error texts are Go's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
# shouldEscape(c, encodeHost) is false for these besides the alphanumerics (url.go)
_HOST_OK = _ALNUM | frozenset("-_.~!$&'()*+,;=:[]<>\"")
_USERINFO_OK = _ALNUM | frozenset("-._:~!$&'()*+,;=%@")


class GoURLError(ValueError):
    """``url.Parse`` returned an error; the message is Go's ``parse "<url>": <reason>``."""


@dataclass(frozen=True)
class GoURL:
    scheme: str
    host: str  # "" when Go found no authority (including the opaque form scheme:rest)
    path: str  # unescaped, like Go's URL.Path


def _unescape(text: str, mode: str = "path") -> str:
    """Go's ``unescape`` in encodePath/encodeFragment (``path``), encodeHost (``host``) or
    encodeZone (``zone``) mode; raises ValueError with Go's message."""
    raw = text.encode("utf-8", "surrogateescape")
    strict = mode in ("host", "zone")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # '%'
            if i + 2 >= len(raw) or chr(raw[i + 1]) not in _HEX or chr(raw[i + 2]) not in _HEX:
                bad = raw[i:i + 3].decode("utf-8", "replace")
                raise ValueError(f'invalid URL escape "{bad}"')
            value = int(raw[i + 1:i + 3], 16)
            if mode == "host" and value < 0x80 and raw[i:i + 3] != b"%25":
                raise ValueError(f'invalid URL escape "{raw[i:i + 3].decode()}"')
            if mode == "zone" and raw[i:i + 3] != b"%25" and value != 0x20 and (
                    value >= 0x80 or chr(value) not in _HOST_OK):
                raise ValueError(f'invalid URL escape "{raw[i:i + 3].decode()}"')
            i += 3
            continue
        if strict and c < 0x80 and chr(c) not in _HOST_OK:
            raise ValueError(f'invalid character "{chr(c)}" in host name')
        i += 1
    decoded = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return decoded.decode("utf-8", "surrogateescape")


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= b <= "9" for b in port[1:]))


def _parse_host(host: str) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise ValueError("missing ']' in host")
        if not _valid_optional_port(host[end + 1:]):
            raise ValueError(f'invalid port "{host[end + 1:]}" after host')
        zone = host.find("%25", 0, end)
        if zone >= 0:  # RFC 6874 zone: any escape that decodes to a host byte
            return (_unescape(host[:zone], "host") + _unescape(host[zone:end], "zone")
                    + _unescape(host[end:], "host"))
    elif (colon := host.rfind(":")) != -1 and not _valid_optional_port(host[colon:]):
        raise ValueError(f'invalid port "{host[colon:]}" after host')
    return _unescape(host, "host")


def _scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise ValueError("missing protocol scheme")
            return raw[:i], raw[i + 1:]
        return "", raw
    return "", raw


def _parse(raw: str) -> GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    if raw == "*":
        return GoURL("", "", "*")
    scheme, rest = _scheme(raw)
    scheme = scheme.lower()
    rest = rest.partition("?")[0]  # ForceQuery or RawQuery: cut either way
    if not rest.startswith("/"):
        if scheme:
            return GoURL(scheme, "", "")  # opaque: no host
        if ":" in rest.partition("/")[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        at = authority.rfind("@")
        host = _parse_host(authority[at + 1:])
        if at >= 0:
            userinfo = authority[:at]
            if not all(c in _USERINFO_OK for c in userinfo):
                raise ValueError("net/url: invalid userinfo")
            for part in userinfo.split(":", 1):
                _unescape(part)
    return GoURL(scheme, host, _unescape(rest))


def parse(raw: str) -> GoURL:
    """``url.Parse(raw)``, or :class:`GoURLError` with Go's message."""
    head, _, fragment = raw.partition("#")
    try:
        url = _parse(head)
    except ValueError as exc:
        raise GoURLError(f'parse "{head}": {exc}') from None
    if fragment:
        try:
            _unescape(fragment)
        except ValueError as exc:
            raise GoURLError(f'parse "{raw}": {exc}') from None
    return url
