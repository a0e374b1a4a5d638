"""DUCC's ParseImage (cvmfs/cvmfs ducc/lib/parse.go) on top of Go's url.Parse
(src/net/url/url.go): what each wishlist string becomes. The expected values are traced by hand
through those two functions; none is taken from lamina."""

from __future__ import annotations

import pytest

from lamina.cvmfs.ducc_image import DuccImage, DuccParseError, parse_image

D = "sha256:" + "e" * 64


def cern(repository: str, tag: str = "", digest: str = "") -> DuccImage:
    return DuccImage("https", "registry.cern.ch", repository, tag, digest)


PARSED = [
    ("https://registry.cern.ch/hep/app:1.0", cern("hep/app", "1.0")),
    # Go lower-cases the scheme only; the host keeps its case
    ("HTTPS://Registry.CERN.ch/Hep/app:1.0",
     DuccImage("https", "Registry.CERN.ch", "Hep/app", "1.0")),
    # no scheme: url.Parse sees a path and no host, ParseImage retries with https://
    ("registry.cern.ch/hep/app:1.0", cern("hep/app", "1.0")),
    # "localhost:5000/..." parses as scheme "localhost" with an opaque rest: no host, retry
    ("localhost:5000/hep/app:1.0", DuccImage("https", "localhost:5000", "hep/app", "1.0")),
    ("http://registry.cern.ch/hep/app:1.0",
     DuccImage("http", "registry.cern.ch", "hep/app", "1.0")),
    ("https://[::1]:5000/hep/app:1.0", DuccImage("https", "[::1]:5000", "hep/app", "1.0")),
    ("https://[2001:db8::1]/hep/app:*", DuccImage("https", "[2001:db8::1]", "hep/app", "*")),
    # the digest wins for the fetch, the tag for the path
    (f"https://registry.cern.ch/hep/app:1.0@{D}",
     cern("hep/app", "1.0", D)),
    (f"https://registry.cern.ch/hep/app@{D}", cern("hep/app", "", D)),
    # repository trimmed of '/', path unescaped before the split, query and fragment cut off
    ("https://registry.cern.ch//hep/app/:1.0", cern("hep/app", "1.0")),
    ("https://registry.cern.ch/hep/app%3A1.0", cern("hep/app", "1.0")),
    ("https://registry.cern.ch/hep/app:1.0?x=1#frag",
     cern("hep/app", "1.0")),
    # userinfo is dropped by url.Parse
    ("https://me:pw@registry.cern.ch/hep/app:1.0",
     cern("hep/app", "1.0")),
    # no tag and no digest parses; GetReference panics later
    ("https://registry.cern.ch/hep/app", cern("hep/app")),
    # an empty tag is no tag
    ("https://registry.cern.ch/hep/app:", cern("hep/app")),
    # a space survives url.Parse (only control characters are refused)
    ("https://registry.cern.ch/hep/app:1 2", cern("hep/app", "1 2")),
    # "/x:1": no host even with https:// ("https:///x:1"), so the retry of the retry takes
    # "https:" as the host
    ("/hep/app:1", DuccImage("https", "https:", "hep/app", "1")),
]


@pytest.mark.parametrize(("text", "image"), PARSED, ids=[p[0] for p in PARSED])
def test_parse_image(text: str, image: DuccImage) -> None:
    assert parse_image(text) == image


FAILS = [
    ("", "Impossible to identify the registry of the image: "),
    ("42", "Impossible to identify the registry of the image: 42"),
    ("https://registry.cern.ch", "Impossible to identify the repository of the image"),
    ("https://registry.cern.ch/", "Impossible to find the repository for"),
    ("https://registry.cern.ch/hep/app:1:2", "Impossible to parse the image"),
    ("https://registry.cern.ch/hep/app:1:2:3", "too many `:` in"),
    (f"https://registry.cern.ch/hep/app@{D}@{D}", "To many `@` in the image name"),
    ("my_registry:5000/hep/app:1", "first path segment in URL cannot contain colon"),
    ("https://registry.cern.ch:50x0/hep/app:1", 'invalid port ":50x0" after host'),
    ("https://[::1/hep/app:1", "missing ']' in host"),
    ("https://reg istry/hep/app:1", 'invalid character " " in host name'),
    ("https://registry.cern.ch/hep/app%zz:1", 'invalid URL escape "%zz"'),
    ("https://registry.cern.ch/hep/app:1\x7f", "invalid control character in URL"),
    ("https://a b@registry.cern.ch/hep/app:1", "invalid userinfo"),
]


@pytest.mark.parametrize(("text", "error"), FAILS, ids=[f[0] for f in FAILS])
def test_parse_image_errors(text: str, error: str) -> None:
    with pytest.raises(DuccParseError) as info:
        parse_image(text)
    assert error in str(info.value)


def test_public_path_and_fetch_reference() -> None:
    pinned = parse_image(f"https://registry.cern.ch/hep/app:1.0@{D}")
    assert (pinned.public_path, pinned.fetched_by) == ("registry.cern.ch/hep/app:1.0", D)
    only = parse_image(f"https://registry.cern.ch/hep/app@{D}")
    assert only.public_path == f"registry.cern.ch/hep/app:{D}"
    assert parse_image("https://r.io/a:1.*").wildcard
