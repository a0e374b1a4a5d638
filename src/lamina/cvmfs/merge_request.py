"""Open (or bring up to date) the merge request that adds images to the unpacked.cern.ch
wishlist, through the GitLab REST API with python-gitlab.

Why the API and not ``git push``: one call per step with structured errors, no clone of a
large shared repository, and a token instead of SSH keys. The flow is idempotent so that a CI
job can run it on every release:

1. find the upstream project and decide where the branch lives: upstream when the user can
   push there (Developer or above), else their fork (configured, found, or created);
2. if an open MR from ``lamina/<name>`` already exists, add the missing lines to that branch
   (a commit only when its file changes) and refresh the description;
3. otherwise create the branch from upstream's target branch in the same call as the commit
   (``start_branch`` + ``start_project``, so a stale fork does not matter), with
   ``last_commit_id`` so that a concurrent edit of the file is detected, then open the MR.

Every request goes through :class:`lamina.http.BoundedSession` (deadline, body cap, the
token only to the configured GitLab's origin, ``keep_base_url`` so paging links cannot point
python-gitlab elsewhere); lists stop after :data:`MAX_LIST_ITEMS` entries or when a page
repeats, and a 429's ``Retry-After`` is capped (python-gitlab would sleep for whatever the
server says, ten times).

The token comes from ``LAMINA_GITLAB_TOKEN`` (a personal, project or group access token with
``api`` scope). ``CI_JOB_TOKEN`` cannot create merge requests on another project, so it is not
used for writing. The token is registered for redaction and never printed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabError

from lamina import redact
from lamina.cvmfs import GitLabError
from lamina.cvmfs.config import CvmfsConfig
from lamina.cvmfs.entries import PlannedEntry
from lamina.cvmfs.mr_text import (  # the MR's text
    ImageSummary,
    description_for,
    title_for,
)
from lamina.cvmfs.wishlist import WishlistEdit, add_entries
from lamina.http import BoundedSession, http_timeout, origin_of

TOKEN_ENV = "LAMINA_GITLAB_TOKEN"
DEVELOPER = 30  # GitLab access level that may push branches
MAX_LIST_ITEMS = 2000
MAX_RETRY_AFTER = 5


@dataclass
class MrResult:
    action: str  # opened | updated | up-to-date | nothing-to-add
    edit: WishlistEdit
    url: str | None = None
    iid: int | None = None
    commit: str | None = None
    source_project: str | None = None
    notes: list[str] = field(default_factory=list)


def token_from_env() -> str | None:
    token = os.environ.get(TOKEN_ENV) or None
    redact.register(token)
    return token


def require_token() -> str:
    token = token_from_env()
    if token:
        return token
    if os.environ.get("CI_JOB_TOKEN"):
        raise GitLabError(f"CI_JOB_TOKEN cannot open merge requests on another project; set "
                          f"{TOKEN_ENV} to a personal or project access token with api scope")
    raise GitLabError(f"no GitLab token: set {TOKEN_ENV} to a personal or project access token "
                      "with api scope (use --dry-run to only see the change)")




def _message(exc: GitlabError) -> str:
    raw: Any = exc.error_message
    if isinstance(raw, list):
        text = "; ".join(str(x) for x in raw)
    elif isinstance(raw, dict):
        text = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in raw.items())
    else:
        text = str(raw)
    return " ".join(text.split())[:300]


@contextlib.contextmanager
def gitlab_errors(what: str, url: str) -> Iterator[None]:
    """Turn python-gitlab and requests failures into one redacted line."""
    try:
        yield
    except GitlabError as exc:
        code, text = exc.response_code, _message(exc)
        if code == 401:
            msg = (f"{what}: GitLab at {url} rejected the credentials (401); set {TOKEN_ENV} to "
                   "a valid access token with api scope")
        elif code == 403:
            msg = (f"{what}: forbidden (403): the token's user may not do this; use a fork "
                   "you own (cvmfs.fork or --fork) or ask for Developer access")
        elif code == 404:
            msg = f"{what}: not found (404): {text}"
        elif code == 409:
            msg = f"{what}: conflict (409): {text}"
        elif code == 400 and "changed since" in text:
            msg = (f"{what}: the file changed on GitLab while lamina was editing it (someone "
                   "else committed); rerun to start from the new version")
        elif code is None:
            msg = f"{what}: {text}"
        else:
            msg = f"{what}: GitLab answered {code}: {text}"
        raise GitLabError(redact.redact(msg)) from None
    except requests.RequestException as exc:
        first = " ".join(str(exc).split())[:200]
        raise GitLabError(redact.redact(f"{what}: cannot reach GitLab at {url}: {first}")
                          ) from None


def _cap_rate_limit(response: requests.Response, *args: Any, **kwargs: Any
                    ) -> requests.Response:
    """python-gitlab sleeps ``Retry-After`` (or until ``RateLimit-Reset``) seconds on each
    of up to ten 429s: bound what the server may ask for."""
    if response.status_code == 429:
        asked = response.headers.get("Retry-After", "")
        wait = min(int(asked), MAX_RETRY_AFTER) if asked.isdigit() else 1
        response.headers["Retry-After"] = str(wait)
        response.headers.pop("RateLimit-Reset", None)
    return response


def connect(cfg: CvmfsConfig, token: str | None) -> gitlab.Gitlab:
    try:
        origin = origin_of(cfg.gitlab_url)
    except ValueError:
        raise GitLabError("the GitLab URL must be http(s)://host[:port] without credentials; "
                          f"put the token in {TOKEN_ENV}") from None
    session = BoundedSession(credential_origins={origin})
    session.hooks["response"].append(_cap_rate_limit)
    return gitlab.Gitlab(cfg.gitlab_url, private_token=token, timeout=http_timeout(),
                         session=session, keep_base_url=True)


def bounded_list(items: Iterator[Any], what: str) -> list[Any]:
    """A python-gitlab list iterator read to its end, at most :data:`MAX_LIST_ITEMS`
    entries; an entry seen twice means the server's paging repeats itself."""
    out: list[Any] = []
    seen: set[Any] = set()
    for item in items:
        key = getattr(item, "id", None) or getattr(item, "iid", None)
        if key is not None and key in seen:
            raise GitLabError(f"{what}: GitLab's paging repeats entries; stopped")
        seen.add(key)
        out.append(item)
        if len(out) > MAX_LIST_ITEMS:
            raise GitLabError(f"{what}: more than {MAX_LIST_ITEMS} entries; stopped")
    return out


def read_wishlist(cfg: CvmfsConfig, token: str | None) -> str:
    """The wishlist text on upstream's target branch (read-only; a token is optional)."""
    gl = connect(cfg, token)
    with gitlab_errors(f"reading {cfg.project}:{cfg.branch}/{cfg.file}", cfg.gitlab_url):
        project = gl.projects.get(cfg.project)
        raw = project.files.raw(file_path=cfg.file, ref=cfg.branch)
    assert isinstance(raw, bytes)
    return raw.decode("utf-8")


@dataclass
class _File:
    text: str
    last_commit_id: str


class SyncRepository:
    """The wishlist repository on one GitLab, seen by one user."""

    def __init__(self, cfg: CvmfsConfig, token: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.cfg = cfg
        self.gl = connect(cfg, token)
        self.sleep = sleep

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return gitlab_errors(what, self.cfg.gitlab_url)

    def _read(self, project: Any, ref: str) -> _File:
        with self._errors(f"reading {project.path_with_namespace}:{ref}/{self.cfg.file}"):
            f = project.files.get(file_path=self.cfg.file, ref=ref)
            return _File(f.decode().decode("utf-8"), str(f.last_commit_id))

    def _has_branch(self, project: Any, branch: str) -> bool:
        try:
            project.branches.get(branch)
        except GitlabError as exc:
            if exc.response_code == 404:
                return False
            with self._errors(f"looking up branch {branch}"):
                raise
        except requests.RequestException:
            with self._errors(f"looking up branch {branch}"):
                raise
        return True

    def _source(self, upstream: Any, username: str) -> Any:
        """Where the branch is pushed: a configured fork, upstream, or the user's fork."""
        if self.cfg.fork:
            with self._errors(f"opening fork {self.cfg.fork}"):
                fork = self.gl.projects.get(self.cfg.fork)
            parent = (getattr(fork, "forked_from_project", None) or {}).get("id")
            if parent != upstream.id:
                raise GitLabError(f"{self.cfg.fork} is not a fork of {self.cfg.project}")
            return fork
        perms = getattr(upstream, "permissions", None) or {}
        levels = [(perms.get(k) or {}).get("access_level") or 0
                  for k in ("project_access", "group_access")]
        if max(levels) >= DEVELOPER:
            return upstream
        with self._errors(f"listing your forks of {self.cfg.project}"):
            forks = bounded_list(upstream.forks.list(owned=True, iterator=True),
                                 "listing your forks")
        mine = [f for f in forks
                if (getattr(f, "namespace", None) or {}).get("full_path") == username]
        if mine or forks:
            with self._errors("opening your fork"):
                return self.gl.projects.get((mine or forks)[0].id)
        with self._errors(f"forking {self.cfg.project}"):
            created = upstream.forks.create({})
            fork = self.gl.projects.get(created.id)
            for _ in range(120):  # forking is asynchronous on the server
                status = getattr(fork, "import_status", "finished") or "finished"
                if status in ("finished", "none"):
                    return fork
                if status == "failed":
                    raise GitLabError(f"forking {self.cfg.project} failed on GitLab")
                self.sleep(1.0)
                fork = self.gl.projects.get(created.id)
        raise GitLabError(f"forking {self.cfg.project}: still not ready after 2 minutes")

    def _open_mr(self, upstream: Any, source: Any, branch: str) -> Any | None:
        with self._errors("listing open merge requests"):
            mrs = bounded_list(upstream.mergerequests.list(
                source_branch=branch, state="opened", iterator=True),
                "listing open merge requests")
        for mr in mrs:
            if (mr.source_project_id == source.id and mr.target_branch == self.cfg.branch
                    and mr.target_project_id == upstream.id):
                return mr
        return None

    def _commit(self, source: Any, upstream: Any, branch: str, text: str, last_commit_id: str,
                message: str, *, new_branch: bool, reset: bool) -> str:
        data: dict[str, Any] = {
            "branch": branch,
            "commit_message": message,
            "actions": [{"action": "update", "file_path": self.cfg.file, "content": text,
                         "last_commit_id": last_commit_id}],
        }
        if new_branch:
            data["start_branch"] = self.cfg.branch
            if source.id != upstream.id:
                data["start_project"] = upstream.id
            if reset:  # our own lamina/ branch left over from an earlier, closed MR
                data["force"] = True
        with self._errors(f"committing {self.cfg.file} to {source.path_with_namespace}:"
                          f"{branch}"):
            commit = source.commits.create(data)
        return str(commit.id)

    def submit(self, branch: str, planned: Sequence[PlannedEntry],
               summaries: Sequence[ImageSummary]) -> MrResult:
        with self._errors(f"signing in to {self.cfg.gitlab_url}"):
            self.gl.auth()
        user = self.gl.user
        assert user is not None
        with self._errors(f"opening project {self.cfg.project}"):
            upstream = self.gl.projects.get(self.cfg.project)
        urls = [p.url for p in planned]
        base = self._read(upstream, self.cfg.branch)
        wanted = add_entries(base.text, urls, f"{self.cfg.project}/{self.cfg.file}")
        source = self._source(upstream, str(user.username))
        existing = self._open_mr(upstream, source, branch)
        title = title_for(summaries)
        description = description_for(summaries, planned, wanted.broken, wanted.notes)
        message = title + "\n\n" + "\n".join(wanted.added or urls) + "\n"
        where = str(source.path_with_namespace)
        if existing is not None and self._has_branch(source, branch):
            current = self._read(source, branch)
            edit = add_entries(current.text, wanted.added, f"{where}:{branch}/{self.cfg.file}")
            edit.skipped = wanted.skipped + edit.skipped
            commit = None
            if edit.changed:
                commit = self._commit(source, upstream, branch, edit.text,
                                      current.last_commit_id, message, new_branch=False,
                                      reset=False)
            changed_text = existing.description != description or existing.title != title
            if changed_text:
                with self._errors(f"updating merge request !{existing.iid}"):
                    existing.description = description
                    existing.title = title
                    existing.save()
            action = "updated" if commit or changed_text else "up-to-date"
            return MrResult(action, edit, existing.web_url, existing.iid, commit, where)
        if not wanted.changed:
            return MrResult("nothing-to-add", wanted, None, None, None, where)
        reset = self._has_branch(source, branch)
        commit = self._commit(source, upstream, branch, wanted.text, base.last_commit_id,
                              message, new_branch=True, reset=reset)
        data: dict[str, Any] = {"source_branch": branch, "target_branch": self.cfg.branch,
                                "title": title, "description": description,
                                "remove_source_branch": True}
        if source.id != upstream.id:
            data["target_project_id"] = upstream.id
        with self._errors(f"opening the merge request from {where}:{branch}"):
            mr = source.mergerequests.create(data)
        result = MrResult("opened", wanted, mr.web_url, mr.iid, commit, where)
        if reset:
            result.notes.append(f"branch {branch} existed without an open merge request; "
                                "it was reset to the target branch")
        return result
