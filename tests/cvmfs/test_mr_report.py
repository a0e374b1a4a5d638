"""What `lamina cvmfs mr` says about the wishlist besides its own lines: existing lines DUCC
fails on (dry run, --json and the merge request description recorded by the fake GitLab),
pinned lines sharing a path with a line it adds, and Docker Hub written as DUCC needs it.

The verdicts are DUCC's (cited in tests/cases/wishlist/broken-existing/case.yaml and below);
the texts are lamina's one-line reports, written out literally here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cvmfs.conftest import CASES, MAINTAINER_TOKEN, CliResult, Project, publication
from tests.cvmfs.fake_gitlab import FakeGitLab

Run = Callable[..., CliResult]
BROKEN = (CASES / "broken-existing" / "recipe.yaml").read_text()
APP_LINES = [f"    - 'https://registry.cern.ch/hep/app:{t}'"
             for t in ("1.0", "1.0-amd64", "1.0-arm64")]
PANIC = "('Image wrong format, missing both tag and digest')"
UNMARSHAL = ("yaml.v2 fails with 'cannot unmarshal !!{} into string' and DUCC converts nothing "
             "this pass ('Impossible to parse the recipe file')")
# line: lamina's report of it (the reasons are DUCC's, see the case's case.yaml)
REPORTS = {
    6: f"https://registry.cern.ch/hep/notag: no tag and no digest: DUCC panics on it {PANIC}",
    7: ": ParseImage fails (Impossible to identify the registry of the image: ); DUCC still "
       f"queues it and then panics on it {PANIC}",
    8: "42: ParseImage fails (Impossible to identify the registry of the image: 42); DUCC still "
       f"queues it and then panics on it {PANIC}",
    9: f"(not a string): a mapping, not a string: {UNMARSHAL.format('map')}",
    10: f"(not a string): a list, not a string: {UNMARSHAL.format('seq')}",
    11: "https://registry.cern.ch/hep/app:1:2:3: ParseImage fails (Impossible to parse the "
        "string into an image, too many `:` in : https://registry.cern.ch/hep/app:1:2:3); DUCC "
        f"still queues it and then panics on it {PANIC}",
    12: "https://registry.cern.ch/hep/app@sha256:0@sha256:1: ParseImage fails (To many `@` in "
        "the image name: https://registry.cern.ch/hep/app@sha256:0@sha256:1); DUCC still "
        f"queues it and then panics on it {PANIC}",
    13: "https://docker.io/library/centos:7: 'docker.io' is not a registry API host (DUCC uses "
        "the host literally); Docker Hub is registry.hub.docker.com (library/<name> for "
        "official images), so DUCC gets nothing from the registry",
    14: "ftp://registry.cern.ch/hep/app:1.0: scheme 'ftp': DUCC requests "
        "'ftp://registry.cern.ch/v2/…', which Go's HTTP client refuses",
    15: "https://registry.cern.ch/Hep/App:1.0: repository 'Hep/App' is outside the "
        "distribution-spec name grammar, so DUCC gets nothing from the registry",
    16: "https://registry.cern.ch/hep/app:1.0 beta: tag '1.0 beta' is outside the "
        "distribution-spec tag grammar, so DUCC gets nothing from the registry",
    17: "https://registry.cern.ch/hep/app@sha256:abc: 'sha256:abc' is not a digest, so DUCC "
        "gets nothing from the registry",
    18: "https://reg_istry/hep/app:1.0: 'reg_istry' is not a registry host[:port], so DUCC gets "
        "nothing from the registry",
    19: "https://registry.cern.ch/hep/app:(1.*: tag glob '(1.*' does not compile as DUCC's "
        "regexp (error parsing regexp: missing closing ): `(1..*`): DUCC expands it to no "
        "image",
    20: "my_registry:5000/hep/app:1.0: ParseImage fails (parse \"my_registry:5000/hep/app:1.0\": "
        "first path segment in URL cannot contain colon); DUCC still queues it and then panics "
        f"on it {PANIC}",
    21: "https://registry.cern.ch:99999/hep/app:1.0: port '99999' of 'registry.cern.ch:99999' "
        "is out of range, so DUCC gets nothing from the registry",
}


@pytest.fixture
def published(project: Project) -> Project:
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    return project


def mr(lamina: Run, project: Project, fake: FakeGitLab, *extra: str) -> CliResult:
    return lamina("-C", str(project.root), "cvmfs", "mr", "app", "--gitlab-url", fake.url,
                  *extra)


def added_lines(diff: str) -> list[str]:
    return [line[1:] for line in diff.splitlines()
            if line.startswith("+") and not line.startswith("+++")]


def test_broken_existing_lines_are_reported_in_the_dry_run(
        published: Project, gitlab: FakeGitLab, lamina: Run) -> None:
    upstream = gitlab.projects[min(gitlab.projects)]
    gitlab.push(upstream, "master", "recipe.yaml", BROKEN)
    result = mr(lamina, published, gitlab, "--dry-run")
    assert result.code == 0, result.err
    assert added_lines(result.out) == APP_LINES  # lamina's lines still go in, nothing else
    assert "Traceback" not in result.err
    reported = [line for line in result.err.splitlines() if line.startswith("# line ")]
    assert reported == [f"# line {n}: {text}" for n, text in REPORTS.items()]
    assert ("# Existing wishlist lines DUCC cannot use (16; this merge request leaves them as "
            "they are):") in result.err.splitlines()

    data = mr(lamina, published, gitlab, "--dry-run", "--json").json()
    assert [b["line"] for b in data["broken"]] == list(REPORTS)
    assert data["broken"][0] == {"line": 6, "entry": "https://registry.cern.ch/hep/notag",
                                 "why": f"no tag and no digest: DUCC panics on it {PANIC}"}
    assert data["broken"][3]["entry"] is None  # the mapping is no string
    assert data["broken"][1]["entry"] == ""  # the null item is yaml.v2's ""


def test_broken_existing_lines_are_listed_in_the_merge_request(
        published: Project, gitlab: FakeGitLab, lamina: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]
    gitlab.push(upstream, "master", "recipe.yaml", BROKEN)
    result = mr(lamina, published, gitlab)
    assert result.code == 0, result.err
    [opened] = gitlab.open_mrs()
    lines = opened.description.splitlines()
    heading = lines.index("Existing wishlist lines DUCC cannot use (16; this merge request "
                          "leaves them as they are):")
    listed = lines[heading + 2:heading + 2 + len(REPORTS)]
    assert listed[3] == f"- line 9: `` (not a string) ``: a mapping, not a string: " \
                        f"{UNMARSHAL.format('map')}"
    assert listed[0] == (f"- line 6: `` https://registry.cern.ch/hep/notag ``: no tag and no "
                         f"digest: DUCC panics on it {PANIC}")
    assert [line.split(":", 1)[0] for line in listed] == [f"- line {n}" for n in REPORTS]
    # never "fixed": the branch is upstream's file plus lamina's lines
    assert gitlab.file(upstream, "lamina/app", "recipe.yaml") == BROKEN + "".join(
        line + "\n" for line in APP_LINES)


def test_pinned_line_at_the_same_path_is_noted(published: Project, gitlab: FakeGitLab,
                                               lamina: Run, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    # image.go: GetManifestUrl fetches the digest, GetPublicSymlinkPath uses the tag
    pin = "sha256:" + "c" * 64
    upstream = gitlab.projects[min(gitlab.projects)]
    base = (CASES / "upstream-four-space" / "recipe.yaml").read_text()
    text = base + f"    - 'https://registry.cern.ch/hep/app:1.0@{pin}'\n"
    gitlab.push(upstream, "master", "recipe.yaml", text)
    result = mr(lamina, published, gitlab, "--dry-run")
    assert result.code == 0, result.err
    assert added_lines(result.out) == APP_LINES  # the pin does not cover the tag line
    note = (f"line 11: https://registry.cern.ch/hep/app:1.0@{pin} pins {pin} and publishes at "
            "the same path /cvmfs/unpacked.cern.ch/registry.cern.ch/hep/app:1.0: DUCC would "
            "fill that path from two wishes, the pinned digest and the tag")
    assert f"# note: {note}" in result.err.splitlines()
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    assert mr(lamina, published, gitlab).code == 0
    [opened] = gitlab.open_mrs()
    assert f"- {note}" in opened.description.splitlines()


def test_docker_hub_is_written_as_registry_hub_docker_com(project: Project, gitlab: FakeGitLab,
                                                          lamina: Run) -> None:
    project.publish("app", {"docker.io/hepuser/app": publication(["1.0"])})
    local = project.root / "wishlist.yaml"
    local.write_text((CASES / "upstream-four-space" / "recipe.yaml").read_text())
    result = mr(lamina, project, gitlab, "--dry-run", "--wishlist", str(local))
    assert result.code == 0, result.err
    assert added_lines(result.out) == [f"    - 'https://registry.hub.docker.com/hepuser/app:{t}'"
                                       for t in ("1.0", "1.0-amd64", "1.0-arm64")]
    note = ("# note: docker.io/hepuser/app is listed as registry.hub.docker.com/hepuser/app: "
            "DUCC uses the host literally as the registry API host, and Docker Hub's is "
            "registry.hub.docker.com")
    assert note in result.err.splitlines()
    entries = lamina("-C", str(project.root), "cvmfs", "entries", "--json")
    assert entries.code == 0 and note in entries.err.splitlines()
    assert entries.json()[0]["path"] == ("/cvmfs/unpacked.cern.ch/registry.hub.docker.com/"
                                         "hepuser/app:1.0")


def test_trailing_tabs_are_accepted_and_tabs_yaml_v2_refuses_are_one_line(
        published: Project, gitlab: FakeGitLab, lamina: Run) -> None:
    local = published.root / "wishlist.yaml"
    local.write_bytes((CASES / "trailing-tabs" / "recipe.yaml").read_bytes())
    result = mr(lamina, published, gitlab, "--dry-run", "--wishlist", str(local))
    assert result.code == 0, result.err
    assert added_lines(result.out) == APP_LINES
    local.write_bytes((CASES / "tab-after-dash-refused" / "recipe.yaml").read_bytes())
    refused = mr(lamina, published, gitlab, "--dry-run", "--wishlist", str(local))
    assert refused.code == 1
    assert refused.err.splitlines() == [
        f"lamina: error: {local}:3: not valid YAML for DUCC's reader (yaml.v2): while scanning "
        "for the next token: found character that cannot start any token"]
