"""Wishlist lines for unpacked.cern.ch, checked with the unpacker's own parsing rules.

DUCC reads each ``input:`` line with ``ParseImage`` (``ducc/lib/parse.go``): a URL whose host
is used literally as the registry API host, whose path is ``<repository>[:<tag>][@<digest>]``.
A line with neither tag nor digest makes the whole conversion panic, and a parse error stops
the sync for everyone, so lamina refuses such lines before they reach a merge request. A ``*``
in the tag is a glob that DUCC expands against the registry's tag list (``*`` becomes ``.*``
in a regular expression, with nothing escaped, and the whole tag must match).

Each published image gives one line for its multi-arch tag (DUCC unpacks the amd64 entry of
an index) and one per architecture (``<tag>-<arch>``), so that every architecture has a
directory on CVMFS whichever branch (``master`` or ``multiarch``) the wishlist lives on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lamina.cvmfs import EntryError

CVMFS_ROOT = "/cvmfs/unpacked.cern.ch"

_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::(?P<port>[0-9]{1,5}))?$"
)
# distribution-spec repository name grammar (lower case path components)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
# an OCI tag, where DUCC also accepts `*` as a glob
_TAG = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class WishEntry:
    """One parsed wishlist line."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None
    scheme: str = "https"

    @property
    def url(self) -> str:
        text = f"{self.scheme}://{self.registry}/{self.repository}"
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    @property
    def wildcard(self) -> bool:
        return self.tag is not None and "*" in self.tag

    @property
    def cvmfs_path(self) -> str:
        """Where DUCC publishes it: the tag names the directory, else the digest does."""
        ref = self.tag if self.tag is not None else self.digest
        return f"{CVMFS_ROOT}/{self.registry}/{self.repository}:{ref}"

    def covers(self, other: WishEntry) -> bool:
        """Whether listing ``self`` already gives ``other``'s directory on CVMFS."""
        if (self.registry.lower(), self.repository) != (other.registry.lower(),
                                                          other.repository):
            return False
        if self.tag is None or other.tag is None:
            return self.tag is None and other.tag is None and self.digest == other.digest
        if self.wildcard:
            return tag_matches(self.tag, other.tag)
        # same tag: same public path, even when one of the two pins a digest
        return self.tag == other.tag


def tag_matches(pattern: str, tag: str) -> bool:
    """DUCC's tag glob: ``*`` becomes ``.*`` with nothing else escaped (so ``.`` matches any
    character), and the match must cover the whole tag."""
    try:
        return re.fullmatch(pattern.replace("*", ".*"), tag) is not None
    except re.error:
        return False


def parse_entry(text: str) -> WishEntry:
    """Parse ``text`` as a wishlist line, or raise :class:`EntryError` saying what the unpacker
    would do wrong with it."""
    line = text
    if not line or line != line.strip() or any(c.isspace() for c in line):
        raise EntryError(f"wishlist entry {line!r}: must be one URL without spaces")
    if any(c in line for c in "'\"\\#?"):
        raise EntryError(f"wishlist entry {line!r}: quotes, backslashes, '#' and '?' are not "
                         "allowed in an image URL")
    parts = urlsplit(line)
    if parts.scheme != "https" or not line.startswith("https://"):
        raise EntryError(f"wishlist entry {line!r}: must start with https:// (the unpacker "
                         "talks to the registry API over HTTPS)")
    host = parts.netloc
    match = _HOST.match(host)
    if not match or "@" in host:
        raise EntryError(f"wishlist entry {line!r}: '{host}' is not a registry host[:port]")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise EntryError(f"wishlist entry {line!r}: port {port} is out of range")
    path = parts.path
    if path.count("@") > 1:
        raise EntryError(f"wishlist entry {line!r}: more than one '@' (the unpacker refuses it)")
    if path.count(":") > 2:
        raise EntryError(f"wishlist entry {line!r}: too many ':' (the unpacker refuses it)")
    repo_tag, _, digest = path.partition("@")
    if digest and not _DIGEST.match(digest):
        raise EntryError(f"wishlist entry {line!r}: digest must be sha256:<64 hex digits>")
    repository, colon, tag = repo_tag.partition(":")
    if not repository.startswith("/"):
        raise EntryError(f"wishlist entry {line!r}: no repository after the registry host")
    repository = repository[1:]
    if "*" in repository:
        raise EntryError(f"wishlist entry {line!r}: '*' is only expanded in the tag, not in "
                         "the repository path")
    if not _REPOSITORY.match(repository):
        raise EntryError(f"wishlist entry {line!r}: '{repository}' is not a valid repository "
                         "path (lower-case components separated by '/')")
    if ":" in tag:
        raise EntryError(f"wishlist entry {line!r}: too many ':' (the unpacker refuses it)")
    if colon and not _TAG.match(tag):
        raise EntryError(f"wishlist entry {line!r}: '{tag}' is not a valid tag")
    if not colon and not digest:
        raise EntryError(f"wishlist entry {line!r}: needs a :tag or an @sha256: digest (without "
                         "either the unpacker panics: 'missing both tag and digest')")
    return WishEntry(registry=host, repository=repository, tag=tag if colon else None,
                     digest=digest or None)


def parse_existing(text: str) -> WishEntry | None:
    """Read a line already in someone's wishlist, as leniently as DUCC does (a missing scheme
    means https); None when it does not parse (it is left alone, never "fixed")."""
    candidate = text.strip()
    if "://" not in candidate:
        candidate = "https://" + candidate
    elif candidate.startswith("http://"):
        candidate = "https://" + candidate[len("http://"):]
    try:
        return parse_entry(candidate)
    except EntryError:
        return None


def covered_by(entry: WishEntry, existing: Iterable[WishEntry]) -> WishEntry | None:
    for other in existing:
        if other.covers(entry):
            return other
    return None


@dataclass(frozen=True)
class PlannedEntry:
    """A line lamina wants on the wishlist, with what it names."""

    image: str
    repository: str  # <registry>/<ns>/<image>, as published
    tag: str
    arch: str | None  # None for the multi-arch index tag
    digest: str
    entry: WishEntry

    @property
    def url(self) -> str:
        return self.entry.url

    @property
    def path(self) -> str:
        return self.entry.cvmfs_path

    def as_json(self) -> dict[str, Any]:
        return {"image": self.image, "repository": self.repository, "tag": self.tag,
                "arch": self.arch, "digest": self.digest, "url": self.url, "path": self.path}


def _arch_of(platform: str) -> str:
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else parts[0]


def planned_entries(image: str, publications: dict[str, Any]) -> list[PlannedEntry]:
    """The wishlist lines for one image's ``published.json``: per repository and tag, the
    index tag, then ``<tag>-<arch>`` in the recipe's platform order."""
    out: list[PlannedEntry] = []
    for repository in sorted(publications):
        pub = publications[repository]
        registry, _, path = repository.partition("/")
        children: dict[str, str] = dict(pub.get("children") or {})
        arches = [_arch_of(p) for p in pub.get("platforms") or []]
        arches += sorted(a for a in children if a not in arches)
        for tag in pub.get("tags") or []:
            out.append(PlannedEntry(image, repository, tag, None, str(pub.get("index_digest")),
                                    parse_entry(f"https://{registry}/{path}:{tag}")))
            for arch in arches:
                if arch not in children:
                    continue
                arch_tag = f"{tag}-{arch}"
                out.append(PlannedEntry(image, repository, arch_tag, arch, children[arch],
                                        parse_entry(f"https://{registry}/{path}:{arch_tag}")))
    return out
