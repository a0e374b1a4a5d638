"""The GitLab client is bounded like every HTTP client of lamina: paging that repeats
itself stops in one line, and a paging link to another origin never gets the token."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.cvmfs.conftest import MAINTAINER_TOKEN, CliResult, Project, publication
from tests.cvmfs.fake_gitlab import OWNER, FakeGitLab
from tests.publish.hostile_registry import Elsewhere

Run = Callable[..., CliResult]


@pytest.fixture
def crowded(project: Project, gitlab: FakeGitLab) -> Project:
    """25 other forks with an open MR from lamina/app: the MR list spans two pages."""
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    upstream = gitlab.projects[min(gitlab.projects)]
    for n in range(25):
        other = gitlab.add_project(f"user{n}/sync", {"recipe.yaml": "input: []\n"},
                                   members={f"user{n}": OWNER}, forked_from=upstream.id)
        other.branches["lamina/app"] = other.branches["master"]
        gitlab.add_mr(other, upstream, "lamina/app", "master", f"user{n}")
    return project


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    recorder = Elsewhere({})
    yield recorder
    recorder.close()


def mr(lamina: Run, project: Project, fake: FakeGitLab) -> CliResult:
    return lamina("-C", str(project.root), "cvmfs", "mr", "app", "--gitlab-url", fake.url)


def test_paging_that_repeats_itself_stops_in_one_line(
        crowded: Project, gitlab: FakeGitLab, lamina: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    gitlab.paging_fault = "repeat"
    result = mr(lamina, crowded, gitlab)
    assert result.code == 1
    assert result.err == ("lamina: error: listing open merge requests: GitLab's paging "
                          "repeats entries; stopped\n")
    pages = [r for r in gitlab.requests if r[1].endswith("/merge_requests") and r[0] == "GET"]
    assert len(pages) == 2


def test_a_paging_link_to_another_origin_never_gets_the_token(
        crowded: Project, gitlab: FakeGitLab, lamina: Run, elsewhere: Elsewhere,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    # an API path elsewhere: python-gitlab keeps the configured base URL (keep_base_url)
    upstream = gitlab.projects[min(gitlab.projects)]
    gitlab.next_elsewhere = f"{elsewhere.url}/api/v4/projects/{upstream.id}/merge_requests"
    assert mr(lamina, crowded, gitlab).code == 0
    assert elsewhere.seen == []
    # any other URL: the session refuses to send the token there
    gitlab.next_elsewhere = f"{elsewhere.url}/collect"
    refused = mr(lamina, crowded, gitlab)
    assert refused.code == 1
    assert refused.err == (f"lamina: error: listing open merge requests: cannot reach GitLab "
                           f"at {gitlab.url}: refused to send credentials to {elsewhere.url}: "
                           "they are not bound to it\n")
    assert elsewhere.seen == []
    assert MAINTAINER_TOKEN not in refused.err


def test_a_gitlab_url_with_credentials_is_refused_without_echoing_them(
        crowded: Project, lamina: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    result = lamina("-C", str(crowded.root), "cvmfs", "mr", "app", "--gitlab-url",
                    "https://jdoe:glpat-Secret-1234@gitlab.example.org")
    assert result.code == 1
    assert result.err == ("lamina: error: the GitLab URL must be http(s)://host[:port] "
                          "without credentials; put the token in LAMINA_GITLAB_TOKEN\n")
