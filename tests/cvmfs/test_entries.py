"""Wishlist lines: the unpacker's parsing rules, its tag glob, and `lamina cvmfs entries`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lamina.cvmfs import EntryError
from lamina.cvmfs.entries import parse_entry, parse_existing, tag_matches
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
    ("https://registry.cern.ch/hep/app:1:2", "too many ':'"),
    (f"https://registry.cern.ch/hep/app@{digest('e')}@{digest('f')}", "more than one '@'"),
    ("https://registry.cern.ch/hep/app@sha256:abc", "sha256:<64 hex digits>"),
    ("https://registry.cern.ch/hep/*:1", "only expanded in the tag"),
    ("https://registry.cern.ch/Hep/App:1", "not a valid repository path"),
    ("https://registry.cern.ch:99999/hep/app:1", "out of range"),
    ("https://reg_istry/hep/app:1", "not a registry host"),
    ("https://registry.cern.ch:5000", "no repository"),
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


def test_existing_lines_are_read_leniently_but_bad_ones_are_ignored() -> None:
    assert parse_existing("registry.cern.ch/hep/app:1") == parse_entry(
        "https://registry.cern.ch/hep/app:1")
    assert parse_existing("https://registry.cern.ch/hep/app") is None


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
