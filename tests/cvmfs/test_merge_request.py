"""`lamina cvmfs mr` against the fake GitLab: one MR per branch, idempotent reruns, the fork
flow, one-line errors without the token, and dry runs that write nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cvmfs.conftest import (
    CASES,
    MAINTAINER_TOKEN,
    TOKEN,
    CliResult,
    Project,
    digest,
    publication,
)
from tests.cvmfs.fake_gitlab import OWNER, FakeGitLab

UPSTREAM = (CASES / "upstream-four-space" / "recipe.yaml").read_text()
APP_LINES = [f"    - 'https://registry.cern.ch/hep/app:{t}'"
             for t in ("1.0", "1.0-amd64", "1.0-arm64")]

Run = Callable[..., CliResult]


@pytest.fixture
def published(project: Project) -> Project:
    project.publish("app", {"registry.cern.ch/hep/app": publication(["1.0"])})
    return project


def mr(lamina: Run, project: Project, fake: FakeGitLab, *extra: str) -> CliResult:
    return lamina("-C", str(project.root), "cvmfs", "mr", "app", "--gitlab-url", fake.url,
                  *extra)


def no_secret(result: CliResult) -> None:
    for token in (TOKEN, MAINTAINER_TOKEN):
        assert token not in result.out and token not in result.err


def test_first_run_opens_one_mr_then_reruns_change_nothing(
        published: Project, gitlab: FakeGitLab, lamina: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]

    first = mr(lamina, published, gitlab)
    assert first.code == 0, first.err
    no_secret(first)
    [opened] = gitlab.open_mrs()
    assert (opened.source_branch, opened.target_branch) == ("lamina/app", "master")
    assert opened.source_project_id == opened.project_id == upstream.id
    assert f"!{opened.iid}" in first.out and "/-/merge_requests/1" in first.out
    # the branch holds upstream's file plus exactly the new lines, nothing else changed
    assert gitlab.file(upstream, "lamina/app", "recipe.yaml") == UPSTREAM + "".join(
        line + "\n" for line in APP_LINES)
    assert gitlab.file(upstream, "master", "recipe.yaml") == UPSTREAM
    for needle in ("registry.cern.ch/hep/app", digest("1"), digest("2"), digest("3"),
                   "linux/amd64, linux/arm64", "734.0 MB",
                   "/cvmfs/unpacked.cern.ch/registry.cern.ch/hep/app:1.0-arm64"):
        assert needle in opened.description

    before = len(gitlab.requests)
    second = mr(lamina, published, gitlab)
    assert second.code == 0, second.err
    assert "up to date" in second.out
    assert len(gitlab.open_mrs()) == 1
    assert [r for r in gitlab.requests[before:] if r[0] != "GET"] == []  # no commit, no edit

    # a new release of the same image goes into the same MR, one new commit
    published.publish("app", {"registry.cern.ch/hep/app": publication(["1.0", "1.1"])})
    head = upstream.branches["lamina/app"]
    third = mr(lamina, published, gitlab)
    assert third.code == 0, third.err
    assert "updated merge request !1" in third.out
    assert len(gitlab.open_mrs()) == 1
    assert gitlab.commits[upstream.branches["lamina/app"]].parent == head
    text = gitlab.file(upstream, "lamina/app", "recipe.yaml")
    assert text is not None
    assert text.endswith("    - 'https://registry.cern.ch/hep/app:1.1-arm64'\n")
    assert text.count("hep/app:1.0'") == 1
    assert "1.1-amd64" in gitlab.open_mrs()[0].description


def test_fork_flow_creates_one_fork_and_finds_its_mr_among_pages(
        published: Project, gitlab: FakeGitLab, lamina: Run,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]
    # 25 other people's forks with an open MR from a branch of the same name: two pages
    for n in range(25):
        other = gitlab.add_project(f"user{n}/sync", {"recipe.yaml": UPSTREAM},
                                   members={f"user{n}": OWNER}, forked_from=upstream.id)
        other.branches["lamina/app"] = other.branches["master"]
        gitlab.add_mr(other, upstream, "lamina/app", "master", f"user{n}")

    first = mr(lamina, published, gitlab)
    assert first.code == 0, first.err
    no_secret(first)
    [fork] = [p for p in gitlab.projects.values() if p.path_with_namespace == "analyst/sync"]
    assert fork.forked_from == upstream.id
    assert gitlab.file(fork, "lamina/app", "recipe.yaml") == UPSTREAM + "".join(
        line + "\n" for line in APP_LINES)
    assert "lamina/app" not in upstream.branches
    mine = [m for m in gitlab.open_mrs() if m.source_project_id == fork.id]
    assert len(mine) == 1 and mine[0].project_id == upstream.id
    commit_posts = [r for r in gitlab.requests if r[0] == "POST" and r[1].endswith("/commits")]
    assert len(commit_posts) == 1

    second = mr(lamina, published, gitlab)
    assert second.code == 0, second.err
    assert "up to date" in second.out
    assert len([m for m in gitlab.open_mrs() if m.source_project_id == fork.id]) == 1
    assert len([r for r in gitlab.requests if r[0] == "POST" and r[1].endswith("/fork")]) == 1
    assert len([r for r in gitlab.requests if r[0] == "POST"
                and r[1].endswith("/commits")]) == 1
    pages = [r for r in gitlab.requests if r[1].endswith("/merge_requests") and r[0] == "GET"]
    assert len(pages) >= 4  # both runs read both pages


def test_configured_fork_is_used(published: Project, gitlab: FakeGitLab, lamina: Run,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]
    fork = gitlab.add_project("analyst/unpacked-sync", {"recipe.yaml": "stale\n"},
                              members={"analyst": OWNER}, forked_from=upstream.id)
    published.set_cvmfs(fork="analyst/unpacked-sync")
    result = mr(lamina, published, gitlab)
    assert result.code == 0, result.err
    # the branch starts from upstream's master, not from the fork's stale copy
    assert gitlab.file(fork, "lamina/app", "recipe.yaml") == UPSTREAM + "".join(
        line + "\n" for line in APP_LINES)
    assert not [r for r in gitlab.requests if r[1].endswith("/fork")]
    [opened] = gitlab.open_mrs()
    assert (opened.source_project_id, opened.project_id) == (fork.id, upstream.id)


def test_nothing_to_add_opens_nothing(published: Project, gitlab: FakeGitLab, lamina: Run,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]
    gitlab.push(upstream, "master", "recipe.yaml",
                UPSTREAM + "    - 'https://registry.cern.ch/hep/app:*'\n")
    result = mr(lamina, published, gitlab)
    assert result.code == 0, result.err
    assert "nothing to add" in result.out and "covered by" in result.out
    assert gitlab.writes() == [] and gitlab.open_mrs() == []


def one_line_error(result: CliResult, *needles: str) -> None:
    assert result.code == 1, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lamina: error: "), result.err
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.err
    no_secret(result)


def test_bad_token_is_401(published: Project, gitlab: FakeGitLab, lamina: Run,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", "glpat-wrong-Secret-0000")
    result = mr(lamina, published, gitlab)
    one_line_error(result, "(401)", "LAMINA_GITLAB_TOKEN")
    assert "glpat-wrong-Secret-0000" not in result.err
    assert gitlab.writes() == []


def test_missing_token_and_job_token_are_explained(published: Project, gitlab: FakeGitLab,
                                                   lamina: Run,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    one_line_error(mr(lamina, published, gitlab), "no GitLab token", "LAMINA_GITLAB_TOKEN")
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token-Secret-777")
    result = mr(lamina, published, gitlab)
    one_line_error(result, "CI_JOB_TOKEN cannot open merge requests")
    assert "job-token-Secret-777" not in result.err and gitlab.requests == []


def test_fork_without_push_access_is_403(published: Project, gitlab: FakeGitLab, lamina: Run,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]
    gitlab.add_project("maintainer/sync", {"recipe.yaml": UPSTREAM},
                       members={"maintainer": OWNER}, forked_from=upstream.id)
    result = mr(lamina, published, gitlab, "--fork", "maintainer/sync")
    one_line_error(result, "(403)", "committing recipe.yaml to maintainer/sync")
    assert gitlab.open_mrs() == []


def test_unknown_project_is_404(published: Project, gitlab: FakeGitLab, lamina: Run,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", TOKEN)
    result = mr(lamina, published, gitlab, "--project", "unpacked/nope")
    one_line_error(result, "(404)", "unpacked/nope", "Project Not Found")


def test_concurrent_mr_is_409(published: Project, gitlab: FakeGitLab, lamina: Run,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]

    def other_job_opens_it(fake: FakeGitLab, project: object, body: object) -> None:
        fake.add_mr(upstream, upstream, "lamina/app", "master", "maintainer", "twin")

    gitlab.on_commit = other_job_opens_it
    result = mr(lamina, published, gitlab)
    one_line_error(result, "(409)", "Another open merge request already exists")
    assert len(gitlab.open_mrs()) == 1  # never a duplicate
    rerun = mr(lamina, published, gitlab)  # the rerun adopts the MR the other job opened
    assert rerun.code == 0, rerun.err
    assert "updated merge request !1" in rerun.out and len(gitlab.open_mrs()) == 1


def test_file_changed_meanwhile_is_a_clear_conflict(published: Project, gitlab: FakeGitLab,
                                                    lamina: Run,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", MAINTAINER_TOKEN)
    upstream = gitlab.projects[min(gitlab.projects)]

    def someone_edits(fake: FakeGitLab, project: object, body: object) -> None:
        fake.push(upstream, "master", "recipe.yaml", UPSTREAM + "    - 'https://a.io/b/c:1'\n")

    gitlab.on_commit = someone_edits
    result = mr(lamina, published, gitlab)
    one_line_error(result, "changed on GitLab while lamina was editing it", "rerun")
    assert "lamina/app" not in upstream.branches and gitlab.open_mrs() == []
    rerun = mr(lamina, published, gitlab)
    assert rerun.code == 0, rerun.err
    text = gitlab.file(upstream, "lamina/app", "recipe.yaml")
    assert text is not None and "https://a.io/b/c:1" in text and APP_LINES[0] in text


def test_dry_run_prints_the_diff_and_writes_nothing(published: Project, gitlab: FakeGitLab,
                                                    lamina: Run,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_GITLAB_TOKEN", TOKEN)
    result = mr(lamina, published, gitlab, "--dry-run")
    assert result.code == 0, result.err
    no_secret(result)
    added = [line[1:] for line in result.out.splitlines()
             if line.startswith("+") and not line.startswith("+++")]
    assert added == APP_LINES
    assert not [line for line in result.out.splitlines()
                if line.startswith("-") and not line.startswith("---")]
    assert gitlab.requests and gitlab.writes() == []

    monkeypatch.delenv("LAMINA_GITLAB_TOKEN")  # the public file needs no token
    assert mr(lamina, published, gitlab, "--dry-run").out == result.out


def test_dry_run_on_a_local_wishlist_makes_no_request(
        published: Project, gitlab: FakeGitLab, lamina: Run, tmp_path: object) -> None:
    local = published.root / "wishlist.yaml"
    local.write_text((CASES / "two-space-commented" / "recipe.yaml").read_text())
    result = mr(lamina, published, gitlab, "--dry-run", "--wishlist", str(local))
    assert result.code == 0, result.err
    assert "+  - https://registry.cern.ch/hep/app:1.0-arm64" in result.out
    assert gitlab.requests == []
    wrong = mr(lamina, published, gitlab, "--wishlist", str(local))
    assert wrong.code == 2 and "only works with --dry-run" in wrong.err
