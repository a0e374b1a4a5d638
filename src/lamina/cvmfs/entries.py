"""Wishlist lines for unpacked.cern.ch, checked with the unpacker's own parsing rules.

Every line goes through DUCC's ``ParseImage`` (:mod:`lamina.cvmfs.ducc_image`, a port of
``ducc/lib/parse.go`` on top of Go's ``url.Parse``): the host is used literally (its case
kept) as the registry API host, the path is ``<repository>[:<tag>][@<digest>]``. A line lamina
writes must also be one DUCC can use: ``https://``, a host name or IP address (IPv6 in
brackets) with an optional port, a distribution-spec repository, a tag (``*`` makes it a glob,
expanded as :mod:`lamina.cvmfs.tag_glob` says) or a digest, and nothing Go would rewrite (the
line must read back as itself). ``docker.io`` is refused: DUCC would request
``https://docker.io/v2/``, which is not Docker Hub's registry API; unpacked.cern.ch writes
Docker Hub as ``registry.hub.docker.com`` (``library/`` for official images), and lamina does
the same for what it publishes to Docker Hub (:func:`planned_entries`).

A line already on the wishlist is judged by :mod:`lamina.cvmfs.existing`. Whether it
*covers* a line lamina wants follows what DUCC publishes where (``covers``): same scheme,
registry (exact case) and repository, and it must serve what the tag serves. A digest-pinned
line (``repo:1.0@sha256:X``) is fetched by X (``GetManifestUrl``), so it never covers the
tag line even though it publishes at the same path ``repo:1.0``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from lamina.cvmfs import EntryError
from lamina.cvmfs.ducc_image import DuccParseError, parse_image
from lamina.cvmfs.tag_glob import GlobError, compile_glob

CVMFS_ROOT = "/cvmfs/unpacked.cern.ch"
DOCKER_HUB = "registry.hub.docker.com"  # the host unpacked.cern.ch lists Docker Hub under
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
# distribution-spec repository name grammar (lower case path components)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # distribution-spec tag
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def host_problem(host: str) -> str | None:
    """Why ``host`` (as Go parsed it) is no registry one can reach, else None."""
    name, port = host, None
    if host.startswith("["):
        end = host.find("]")
        literal, rest = host[1:end], host[end + 1:]
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return f"'{host}' is not an IPv6 address in brackets"
        if rest:
            port = rest[1:]
    elif ":" in host:
        name, _, port = host.rpartition(":")
        if not _NAME.match(name):
            return f"'{host}' is not a registry host[:port]"
    elif not _NAME.match(host):
        return f"'{host}' is not a registry host[:port]"
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return f"port '{port}' of '{host}' is out of range"
    return None


def docker_hub_problem(host: str) -> str | None:
    if host.lower() == "docker.io":
        return (f"'{host}' is not a registry API host (DUCC uses the host literally); Docker "
                f"Hub is {DOCKER_HUB} (library/<name> for official images)")
    return None


@dataclass(frozen=True)
class WishEntry:
    """One parsed wishlist line, with DUCC's fields."""

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
        """Where DUCC publishes it (``GetPublicSymlinkPath``): the tag, else the digest."""
        ref = self.tag if self.tag is not None else self.digest
        return f"{CVMFS_ROOT}/{self.registry}/{self.repository}:{ref}"

    def publishes_at(self, tag: str) -> bool:
        """Whether one of the directories DUCC makes for this line is ``<repo>:<tag>``."""
        if self.tag is None:
            return False
        return self.tag == tag or (self.wildcard and tag_matches(self.tag, tag))

    def covers(self, other: WishEntry) -> bool:
        """Whether listing ``self`` already gives what ``other`` would: the same path on
        CVMFS, filled from the same manifest reference."""
        if (self.scheme, self.registry, self.repository) != (
                other.scheme, other.registry, other.repository):
            return False
        if other.digest is not None:  # a pinned line: the same digest at the same path
            return self.digest == other.digest and self.tag == other.tag
        if self.digest is not None or other.tag is None:
            return False  # pinned lines serve their digest, not what the tag points to
        if other.wildcard:
            return self.tag == other.tag
        return self.publishes_at(other.tag)


def tag_matches(pattern: str, tag: str) -> bool:
    """DUCC's expansion of a tag pattern includes ``tag`` (False for a pattern Go refuses or
    lamina cannot evaluate: such a line covers nothing)."""
    try:
        return compile_glob(pattern).matches(tag)
    except GlobError:
        return False


def _refuse(line: str, why: str) -> EntryError:
    return EntryError(f"wishlist entry {line!r}: {why}")


def parse_entry(text: str) -> WishEntry:
    """Parse ``text`` as a line lamina may write, or raise :class:`EntryError` saying what the
    unpacker would do wrong with it."""
    line = text
    if not line or any(c.isspace() for c in line):
        raise _refuse(line, "must be one URL without spaces")
    if any(c in line for c in "'\"\\#?%"):
        raise _refuse(line, "quotes, backslashes, '#', '?' and '%' are not allowed in an "
                            "image URL")
    if not line.startswith("https://"):
        raise _refuse(line, "must start with https:// (the unpacker talks to the registry "
                            "API over HTTPS)")
    authority = line[len("https://"):].partition("/")[0]
    if "@" in authority:
        raise _refuse(line, f"'{authority}' is not a registry host[:port]")
    try:
        image = parse_image(line)
    except DuccParseError as exc:
        raise _refuse(line, f"the unpacker refuses it: {exc}") from None
    host_why = docker_hub_problem(image.registry) or host_problem(image.registry)
    if host_why:
        raise _refuse(line, host_why)
    if not line.startswith(f"https://{image.registry}/"):
        raise _refuse(line, "no repository after the registry host")
    if "*" in image.repository:
        raise _refuse(line, "'*' is only expanded in the tag, not in the repository path")
    if not REPOSITORY.match(image.repository):
        raise _refuse(line, f"'{image.repository}' is not a valid repository path (lower-case "
                            "components separated by '/')")
    if image.digest and not DIGEST.match(image.digest):
        raise _refuse(line, "digest must be sha256:<64 hex digits>")
    has_tag = ":" in line[len(f"https://{authority}"):].partition("@")[0]
    if has_tag and "*" in image.tag:
        try:
            compile_glob(image.tag)
        except GlobError as exc:
            raise _refuse(line, f"tag glob '{image.tag}' expands to nothing: {exc}") from None
    elif has_tag and not TAG.match(image.tag):
        raise _refuse(line, f"'{image.tag}' is not a valid tag")
    if not has_tag and not image.digest:
        raise _refuse(line, "needs a :tag or an @sha256: digest (without either the unpacker "
                            "panics: 'missing both tag and digest')")
    entry = WishEntry(image.registry, image.repository, image.tag if has_tag else None,
                      image.digest or None)
    if entry.url != line:
        raise _refuse(line, f"the unpacker would read it as {entry.url!r}")
    return entry


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


def ducc_repository(repository: str) -> tuple[str, str]:
    """``(host, path)`` to write for a published ``<registry>/<path>``: Docker Hub's names
    become ``registry.hub.docker.com`` (``library/`` for a one-component path), as on
    unpacked.cern.ch; any other host is kept as written."""
    registry, _, path = repository.partition("/")
    if registry.lower() in DOCKER_HUB_ALIASES:
        return DOCKER_HUB, path if "/" in path else f"library/{path}"
    return registry, path


def host_notes(planned: list[PlannedEntry]) -> list[str]:
    """One line per published repository whose wishlist host differs from its own."""
    notes = []
    for repository in dict.fromkeys(p.repository for p in planned):
        host, path = ducc_repository(repository)
        if f"{host}/{path}" != repository:
            notes.append(f"{repository} is listed as {host}/{path}: DUCC uses the host "
                         "literally as the registry API host, and Docker Hub's is "
                         f"{DOCKER_HUB}")
    return notes


def planned_entries(image: str, publications: dict[str, Any]) -> list[PlannedEntry]:
    """The wishlist lines for one image's ``published.json``: per repository and tag, the
    index tag, then ``<tag>-<arch>`` in the recipe's platform order."""
    out: list[PlannedEntry] = []
    for repository in sorted(publications):
        pub = publications[repository]
        registry, path = ducc_repository(repository)
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
