"""Wishlist lines: the unpacker's parsing rules, what covers what, and `lamina cvmfs entries`.

Expected values are read off DUCC's source (cvmfs/cvmfs ducc/lib/parse.go ParseImage,
ducc/lib/image.go GetManifestUrl / GetPublicSymlinkPath / filterUsingGlob) and Go's
src/net/url/url.go, not off lamina's code."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lamina.cvmfs import EntryError
from lamina.cvmfs.entries import WishEntry, parse_entry, planned_entries, tag_matches
from lamina.cvmfs.existing import judge
from lamina.cvmfs.yaml_v2 import Item
from tests.cvmfs.conftest import CliResult, Project, digest, publication

GOOD = [
    ("https://registry.hub.docker.com/library/centos:centos7",
     ("registry.hub.docker.com", "library/centos", "centos7", None)),
    ("https://gitlab-p4n.aip.de:5005/compute4punch/container-stacks/wlcg-wn:latest",
     ("gitlab-p4n.aip.de:5005", "compute4punch/container-stacks/wlcg-wn", "latest", None)),
    ("https://ghcr.io/watonomous/actions-runner-image:*",
     ("ghcr.io", "watonomous/actions-runner-image", "*", None)),
    (f"https://registry.cern.ch/hep/app@{digest('e')}",
     ("registry.cern.ch", "hep/app", None, digest("e"))),
    (f"https://registry.cern.ch/hep/app:1.0@{digest('e')}",
     ("registry.cern.ch", "hep/app", "1.0", digest("e"))),
    # Go's url.Parse keeps the host's case (it lowers only the scheme): DUCC uses it as is
    ("https://Registry.CERN.ch/hep/app:1.0", ("Registry.CERN.ch", "hep/app", "1.0", None)),
    # url.go parseHost: a bracketed IP literal, then an optional :port
    ("https://[::1]:5000/hep/app:1.0", ("[::1]:5000", "hep/app", "1.0", None)),
    ("https://[2001:db8::1]/hep/app:1.0", ("[2001:db8::1]", "hep/app", "1.0", None)),
    # filterUsingGlob compiles the tag as a Go regexp: classes and groups are fine
    ("https://registry.cern.ch/hep/app:1.[0-9]*", ("registry.cern.ch", "hep/app", "1.[0-9]*",
                                                    None)),
]


@pytest.mark.parametrize(("line", "parts"), GOOD, ids=[g[0] for g in GOOD])
def test_valid_lines_parse_like_ducc(line: str, parts: tuple[str, str, str | None, str | None]
                                     ) -> None:
    entry = parse_entry(line)
    assert (entry.registry, entry.repository, entry.tag, entry.digest) == parts
    assert entry.url == line


BAD = [
    ("https://registry.cern.ch/hep/app", "needs a :tag or an @sha256: digest"),
    ("http://registry.cern.ch/hep/app:1", "must start with https://"),
    ("registry.cern.ch/hep/app:1", "must start with https://"),
    # three parts after the split on ":", none an "@": ParseImage's last error
    ("https://registry.cern.ch/hep/app:1:2", "Impossible to parse the image"),
    ("https://registry.cern.ch/hep/app:1:2:3", "too many `:`"),
    (f"https://registry.cern.ch/hep/app@{digest('e')}@{digest('f')}",
     "To many `@` in the image name"),
    ("https://registry.cern.ch/hep/app@sha256:abc", "sha256:<64 hex digits>"),
    ("https://registry.cern.ch/hep/*:1", "only expanded in the tag"),
    ("https://registry.cern.ch/Hep/App:1", "not a valid repository path"),
    ("https://registry.cern.ch:99999/hep/app:1", "out of range"),
    ("https://reg_istry/hep/app:1", "not a registry host"),
    ("https://registry.cern.ch:5000", "Impossible to identify the repository of the image"),
    ("https://docker.io/library/debian:12", "'docker.io' is not a registry API host (DUCC uses "
     "the host literally); Docker Hub is registry.hub.docker.com (library/<name> for official "
     "images)"),
    ("https://[::1/hep/app:1", "missing ']' in host"),
    ("https://[fe80::zz]/hep/app:1", "is not an IPv6 address in brackets"),
    ("https://[::1]:70000/hep/app:1", "out of range"),
    ("https://registry.cern.ch/hep/app:[z-a]*", "invalid character class range"),
    # ParseImage trims "/" around the repository: the line would not read back as itself
    ("https://registry.cern.ch/hep/app/:1.0", "would read it as 'https://registry.cern.ch/hep/app:1.0'"),
    ("https://user@registry.cern.ch/hep/app:1", "not a registry host"),
    ("https://registry.cern.ch/hep/app%3A1", "'%'"),
    ("https://registry.cern.ch/hep/app:", "is not a valid tag"),
    ("https://registry.cern.ch/hep/app:1 # x", "without spaces"),
    ("'https://registry.cern.ch/hep/app:1'", "quotes"),
    ("https://registry.cern.ch/hep/app:1?x=y", "'?'"),
]


@pytest.mark.parametrize(("line", "why"), BAD, ids=[b[0] for b in BAD])
def test_lines_the_unpacker_would_choke_on_are_refused_in_one_line(line: str, why: str) -> None:
    with pytest.raises(EntryError) as info:
        parse_entry(line)
    message = str(info.value)
    assert why in message and "\n" not in message and info.value.exit_code == 2


def test_tag_glob_follows_ducc() -> None:
    # the documented example, and `.` matching any character since nothing is escaped
    assert tag_matches("21.2.1*", "21.2.10")
    assert tag_matches("21.2.1*", "21.2.100-20191127")
    assert not tag_matches("21.2.1*", "21.3.10")
    assert tag_matches("1.0*", "1x0-arm64")
    assert tag_matches("*", "anything")
    assert not tag_matches("v1*", "xv1")  # whole tag, not a substring
    # a character class is a regexp class ('*' still becomes '.*')
    assert tag_matches("1.[0-9]*", "1.5-arm64") and not tag_matches("1.[0-9]*", "1.x")


def test_existing_lines_are_read_as_ducc_reads_them() -> None:
    # no scheme: url.Parse finds no host, ParseImage retries with https://
    assert judge(Item(5, "registry.cern.ch/hep/app:1")).entry == parse_entry(
        "https://registry.cern.ch/hep/app:1")
    # neither tag nor digest: GetReference panics
    verdict = judge(Item(5, "https://registry.cern.ch/hep/app"))
    assert verdict.entry is None
    assert verdict.report() == ("line 5: https://registry.cern.ch/hep/app: no tag and no digest: "
                                "DUCC panics on it ('Image wrong format, missing both tag and "
                                "digest')")


def test_pinned_line_serves_its_digest_not_the_tag() -> None:
    # GetManifestUrl fetches by digest when there is one; the path is still <repo>:<tag>
    pinned = parse_entry(f"https://registry.cern.ch/hep/app:1.0@{digest('e')}")
    tag_line = parse_entry("https://registry.cern.ch/hep/app:1.0")
    assert pinned.cvmfs_path == tag_line.cvmfs_path == (
        "/cvmfs/unpacked.cern.ch/registry.cern.ch/hep/app:1.0")
    assert not pinned.covers(tag_line)
    assert tag_line.covers(tag_line) and pinned.covers(pinned)
    assert not tag_line.covers(pinned)  # the tag may point elsewhere than the pin
    only = parse_entry(f"https://registry.cern.ch/hep/app@{digest('e')}")
    assert only.cvmfs_path == f"/cvmfs/unpacked.cern.ch/registry.cern.ch/hep/app:{digest('e')}"
    assert not only.covers(tag_line) and not only.covers(pinned)


def test_host_case_is_part_of_the_path() -> None:
    upper = parse_entry("https://Registry.CERN.ch/hep/app:1.0")
    lower = parse_entry("https://registry.cern.ch/hep/app:1.0")
    assert upper.cvmfs_path == "/cvmfs/unpacked.cern.ch/Registry.CERN.ch/hep/app:1.0"
    assert not upper.covers(lower) and not lower.covers(upper)


def test_plain_http_line_does_not_cover_the_https_one() -> None:
    # DUCC fetches over the scheme written (image.go baseUrl: "%s://%s/v2/..."); an http line
    # gives the same path only if the registry answers plain HTTP, which lamina cannot know
    http = judge(Item(3, "http://registry.cern.ch/hep/app:1.0")).entry
    assert http == WishEntry("registry.cern.ch", "hep/app", "1.0", None, "http")
    assert not http.covers(parse_entry("https://registry.cern.ch/hep/app:1.0"))


def test_docker_hub_publications_are_listed_under_registry_hub_docker_com() -> None:
    pubs = {"docker.io/hepuser/app": publication(["1.0"]),
            "docker.io/app": publication(["2.0"])}
    urls = [p.url for p in planned_entries("app", pubs)]
    assert urls == [
        "https://registry.hub.docker.com/library/app:2.0",
        "https://registry.hub.docker.com/library/app:2.0-amd64",
        "https://registry.hub.docker.com/library/app:2.0-arm64",
        "https://registry.hub.docker.com/hepuser/app:1.0",
        "https://registry.hub.docker.com/hepuser/app:1.0-amd64",
        "https://registry.hub.docker.com/hepuser/app:1.0-arm64",
    ]


def test_entries_json_from_published_records(project: Project,
                                             lamina: Callable[..., CliResult]) -> None:
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0", "2024.06"])})
    project.publish("ml", {"gitlab-registry.cern.ch/hep/stack/ml":
                           publication(["1.0"], index="4", amd64="5", arm64="6")})
    result = lamina("-C", str(project.root), "cvmfs", "entries", "--json")
    assert result.code == 0, result.err
    rows = result.json()
    assert [r["url"] for r in rows] == [
        "https://registry.cern.ch/hep/app:1.0",
        "https://registry.cern.ch/hep/app:1.0-amd64",
        "https://registry.cern.ch/hep/app:1.0-arm64",
        "https://registry.cern.ch/hep/app:2024.06",
        "https://registry.cern.ch/hep/app:2024.06-amd64",
        "https://registry.cern.ch/hep/app:2024.06-arm64",
        "https://gitlab-registry.cern.ch/hep/stack/ml:1.0",
        "https://gitlab-registry.cern.ch/hep/stack/ml:1.0-amd64",
        "https://gitlab-registry.cern.ch/hep/stack/ml:1.0-arm64",
    ]
    first, arm = rows[0], rows[2]
    assert first["path"] == "/cvmfs/unpacked.cern.ch/registry.cern.ch/hep/app:1.0"
    assert (first["arch"], first["digest"]) == (None, digest("1"))
    assert (arm["arch"], arm["digest"], arm["tag"]) == ("arm64", digest("3"), "1.0-arm64")
    assert rows[-1]["path"] == ("/cvmfs/unpacked.cern.ch/gitlab-registry.cern.ch/hep/stack/"
                                "ml:1.0-arm64")


def test_entries_for_named_image_and_table(project: Project,
                                           lamina: Callable[..., CliResult]) -> None:
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    project.publish("ml", {"registry.cern.ch/hep/ml": publication(["1.0"])})
    result = lamina("-C", str(project.root), "cvmfs", "entries", "ml")
    assert result.code == 0, result.err
    assert "https://registry.cern.ch/hep/ml:1.0-amd64" in result.out
    assert "/cvmfs/unpacked.cern.ch/registry.cern.ch/hep/ml:1.0" in result.out
    assert "hep/app" not in result.out


def test_cvmfs_images_setting_selects_images(project: Project,
                                             lamina: Callable[..., CliResult]) -> None:
    project.set_cvmfs(images=["ml"])
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    project.publish("ml", {"registry.cern.ch/hep/ml": publication(["1.0"])})
    rows = lamina("-C", str(project.root), "cvmfs", "entries", "--json").json()
    assert {r["image"] for r in rows} == {"ml"}


def test_unpublished_and_unknown_images_are_usage_errors(
        project: Project, lamina: Callable[..., CliResult]) -> None:
    result = lamina("-C", str(project.root), "cvmfs", "entries")
    assert result.code == 2 and "no published images" in result.err
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    result = lamina("-C", str(project.root), "cvmfs", "entries", "ml")
    assert result.code == 2 and "ml has not been published" in result.err
    result = lamina("-C", str(project.root), "cvmfs", "entries", "nope")
    assert result.code == 2 and "unknown image 'nope'" in result.err
    assert "Traceback" not in result.err


def test_unknown_cvmfs_key_is_a_recipe_error(project: Project,
                                             lamina: Callable[..., CliResult]) -> None:
    project.set_cvmfs(projet="typo/sync")
    result = lamina("-C", str(project.root), "cvmfs", "entries")
    assert result.code == 2 and "recipe.yaml" in result.err and "projet" in result.err


def test_lamina_unpack_references_use_the_same_parser() -> None:
    # src/lamina/unpack/source.py parse_registry_ref goes through parse_entry
    from lamina.errors import UsageError
    from lamina.unpack.source import parse_registry_ref

    ref = parse_registry_ref("[::1]:5000/hep/app:1.0")
    assert (str(ref.public), ref.transport) == ("[::1]:5000/hep/app:1.0",
                                                "docker://[::1]:5000/hep/app:1.0")
    assert str(parse_registry_ref("Registry.CERN.ch/hep/app:1.0").public) == (
        "Registry.CERN.ch/hep/app:1.0")
    with pytest.raises(UsageError) as info:
        parse_registry_ref("docker.io/library/debian:12")
    assert str(info.value) == (
        "image reference 'docker.io/library/debian:12': 'docker.io' is not a registry API host "
        "(DUCC uses the host literally); Docker Hub is registry.hub.docker.com (library/<name> "
        "for official images)")
