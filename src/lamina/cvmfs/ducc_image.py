"""What DUCC makes of one wishlist string: ``ParseImage`` and the use of its result.

Followed from ``cvmfs/cvmfs`` ``ducc/lib/parse.go`` (``ParseImage``) and ``ducc/lib/image.go``
(``GetManifestUrl``, ``GetReference``, ``GetSimpleReference``, ``GetPublicSymlinkPath``,
``ExpandWildcard``):

* the string goes through Go's ``url.Parse`` (:mod:`lamina.cvmfs.go_url`); when Go finds no
  host, ``https://`` is prepended and the parse retried once;
* ``URL.Path`` is split on ``:`` (more than two colons is an error) and on ``@`` (more than
  one is an error); the repository is trimmed of leading and trailing ``/``; a tag is whatever
  follows the colon, a digest whatever follows the ``@``, neither is checked;
* a tag containing ``*`` is a wildcard, expanded against the registry's tag list;
* the manifest is fetched by the digest when there is one, else by the tag: a pinned
  ``repo:1.0@sha256:X`` serves X whatever ``1.0`` points to;
* the public path is ``<registry>/<repository>:<tag>``, or ``:<digest>`` without a tag;
* with neither tag nor digest, ``GetReference`` panics ("Image wrong format, missing both tag
  and digest") and takes the whole conversion down; since ``ParseYamlRecipeV1`` queues the
  zero ``Image{}`` of a line that failed to parse (``registryMap`` is appended after the error
  is only logged), every unparseable line ends in that same panic.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamina.cvmfs import go_url

PANIC = "DUCC panics on it ('Image wrong format, missing both tag and digest')"


class DuccParseError(ValueError):
    """``ParseImage`` returned an error (the message is DUCC's or Go's)."""


@dataclass(frozen=True)
class DuccImage:
    """The fields of DUCC's ``Image`` that ``ParseImage`` fills."""

    scheme: str
    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def wildcard(self) -> bool:  # TagWildcard: strings.Contains(tag, `*`)
        return "*" in self.tag

    @property
    def simple_reference(self) -> str:
        """``GetSimpleReference``: the tag, else the digest ("" where DUCC panics)."""
        return self.tag or self.digest

    @property
    def public_path(self) -> str:
        """``GetPublicSymlinkPath`` without the repository root (before ``filepath.Join``)."""
        return f"{self.registry}/{self.repository}:{self.simple_reference}"

    @property
    def fetched_by(self) -> str:
        """The reference in ``/v2/<repo>/manifests/<ref>`` (``GetManifestUrl``)."""
        return self.digest or self.tag


def _trim(repository: str) -> str:
    return repository.strip("/")


def parse_image(text: str) -> DuccImage:
    """``ParseImage(text)``, or :class:`DuccParseError` with DUCC's message."""
    try:
        url = go_url.parse(text)
    except go_url.GoURLError as exc:
        raise DuccParseError(str(exc)) from None
    if url.host == "":
        try:
            return parse_image("https://" + text)
        except DuccParseError:
            raise DuccParseError(
                f"Impossible to identify the registry of the image: {text}") from None
    if url.path == "":
        raise DuccParseError(f"Impossible to identify the repository of the image: {text}")
    colon_parts = url.path.split(":")
    if len(colon_parts) == 1:
        repository = _trim(colon_parts[0])
        if not repository:
            raise DuccParseError(f"Impossible to find the repository for: {text}")
        return DuccImage(url.scheme, url.host, repository)
    if len(colon_parts) > 3:
        raise DuccParseError(
            f"Impossible to parse the string into an image, too many `:` in : {text}")
    at_parts = url.path.split("@")
    if len(at_parts) > 2:
        raise DuccParseError(f"To many `@` in the image name: {text}")
    repo_tag, digest = (at_parts[0], at_parts[1]) if len(at_parts) == 2 else (at_parts[0], "")
    repo_tag_parts = repo_tag.split(":")
    repository = _trim(repo_tag_parts[0])
    if not repository:
        raise DuccParseError(f"Impossible to find the repository for: {text}")
    if len(repo_tag_parts) == 1:
        return DuccImage(url.scheme, url.host, repository, "", digest)
    if len(repo_tag_parts) == 2:
        return DuccImage(url.scheme, url.host, repository, repo_tag_parts[1], digest)
    raise DuccParseError(f"Impossible to parse the image: {text}")
