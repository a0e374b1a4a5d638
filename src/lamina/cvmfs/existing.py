"""What DUCC does with the lines already on someone's wishlist.

lamina never edits these lines (the file is shared; fixing other groups' lines is their
maintainers' call), but it must know, line by line, what DUCC publishes for each, to skip
what is already covered, and which lines DUCC fails on, to say so in the dry run and in the
merge request. The verdicts follow DUCC's code:

* yaml.v2 decoding (:mod:`lamina.cvmfs.yaml_v2`): a mapping or list item makes the whole
  file unreadable for DUCC; a null item is the empty string;
* ``ParseImage`` (:mod:`lamina.cvmfs.ducc_image`): a line that does not parse, or has
  neither tag nor digest, ends in DUCC's panic "missing both tag and digest" (the recipe
  reader queues the zero image of an unparseable line);
* fetching: the scheme and host are used literally in ``<scheme>://<host>/v2/<repo>/…``
  (``ducc/lib/image.go``), so another scheme, a host that is not one, ``docker.io``, or a
  repository, tag or digest outside the distribution-spec grammar gets nothing from a
  registry; a tag glob Go's ``regexp`` refuses expands to no tag (``filterUsingGlob``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from lamina.cvmfs import yaml_v2
from lamina.cvmfs.ducc_image import PANIC, DuccParseError, parse_image
from lamina.cvmfs.entries import (
    REPOSITORY,
    TAG,
    WishEntry,
    docker_hub_problem,
    host_problem,
)
from lamina.cvmfs.tag_glob import GlobError, compile_glob

ANY_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
FETCH_FAILS = "so DUCC gets nothing from the registry"


@dataclass(frozen=True)
class ExistingLine:
    """One ``input:`` element and what DUCC makes of it."""

    line: int
    text: str | None  # the string DUCC reads; None when the element is not a string
    entry: WishEntry | None  # what DUCC publishes; None when it publishes nothing
    problem: str | None = None  # why DUCC fails on it, one line

    def shown(self, limit: int = 120) -> str:
        """The element as a short, single-line, printable text."""
        if self.text is None:
            return "(not a string)"
        text = json.dumps(self.text, ensure_ascii=False)[1:-1]
        return text if len(text) <= limit else text[:limit - 1] + "…"

    @property
    def why(self) -> str:
        """The problem on one printable line (DUCC's messages quote the raw element)."""
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in self.problem or "")

    def report(self) -> str:
        return f"line {self.line}: {self.shown()}: {self.why}"


def _fetch_problem(scheme: str, host: str, repository: str, tag: str, digest: str
                   ) -> str | None:
    if scheme not in ("http", "https"):
        shown = f"'{scheme}'" if scheme else "none"
        return (f"scheme {shown}: DUCC requests '{scheme}://{host}/v2/…', which Go's HTTP "
                "client refuses")
    host_why = docker_hub_problem(host) or host_problem(host)
    if host_why:
        return f"{host_why}, {FETCH_FAILS}"
    if not REPOSITORY.match(repository):
        return (f"repository '{repository}' is outside the distribution-spec name grammar, "
                f"{FETCH_FAILS}")
    if digest and not ANY_DIGEST.match(digest):
        return f"'{digest}' is not a digest, {FETCH_FAILS}"
    if tag and "*" in tag:
        try:
            compile_glob(tag)
        except GlobError as exc:
            return f"tag glob '{tag}' does not compile as DUCC's regexp ({exc}): DUCC " \
                   "expands it to no image"
    elif tag and not TAG.match(tag):
        return f"tag '{tag}' is outside the distribution-spec tag grammar, {FETCH_FAILS}"
    return None


def judge(item: yaml_v2.Item) -> ExistingLine:
    if item.value is None:
        return ExistingLine(item.line, None, None, item.problem)
    try:
        image = parse_image(item.value)
    except DuccParseError as exc:
        return ExistingLine(item.line, item.value, None,
                            f"ParseImage fails ({exc}); DUCC still queues it and then "
                            f"{PANIC.removeprefix('DUCC ')}")
    if not image.tag and not image.digest:
        return ExistingLine(item.line, item.value, None, f"no tag and no digest: {PANIC}")
    problem = _fetch_problem(image.scheme, image.registry, image.repository, image.tag,
                             image.digest)
    if problem:
        return ExistingLine(item.line, item.value, None, problem)
    entry = WishEntry(image.registry, image.repository, image.tag or None,
                      image.digest or None, image.scheme)
    return ExistingLine(item.line, item.value, entry)


def read_existing(doc: yaml_v2.Document) -> list[ExistingLine]:
    return [judge(item) for item in yaml_v2.input_items(doc)]
