"""A small in-memory GitLab (REST API v4) on 127.0.0.1 for the merge-request tests.

GitLab cannot run here, so this fake implements the endpoints python-gitlab calls for
``lamina cvmfs mr``, with the answers GitLab documents and gives (status codes and message
texts taken from GitLab's API source and specs):

- ``GET /user``; ``GET /projects/:id`` (numeric id or URL-encoded path, with the caller's
  ``permissions``); 404 ``404 Project Not Found`` for unknown or invisible projects;
- ``GET /projects/:id/repository/files/:path`` (JSON with base64 content and
  ``last_commit_id``) and ``.../raw``; ``GET .../repository/branches/:branch``;
- ``POST /projects/:id/repository/commits`` with ``branch``, ``start_branch``,
  ``start_project``, ``force`` and per-action ``last_commit_id``: 403 without push access or
  outside the fork network, 400 "A branch called '…' already exists. Switch to that branch in
  order to make changes", 400 "You can only create or edit files when you are on a branch",
  400 "A file with this name doesn't exist", 400 "The file has changed since you started
  editing it: <path>";
- ``GET /projects/:id/forks`` (``owned``) and ``POST /projects/:id/fork`` (asynchronous:
  ``import_status`` goes ``scheduled`` → ``finished``);
- ``GET /projects/:id/merge_requests`` (``source_branch``, ``state`` filters; paging with
  ``X-Page``/``X-Next-Page``/``X-Total``… and ``Link`` headers), ``POST`` (409 "Another open
  merge request already exists for this source branch: !<iid>") and ``PUT …/:iid``;
- 401 ``401 Unauthorized`` for a missing token on writes and for any unknown token.

Every request is logged (method, path, no headers) so tests can assert that a dry run writes
nothing. ``on_commit`` lets a test act as a concurrent user at the moment a commit arrives.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DEVELOPER = 30
MAINTAINER = 40
OWNER = 50


@dataclass
class Commit:
    id: str
    files: dict[str, str]
    parent: str | None
    message: str


@dataclass
class Project:
    id: int
    path_with_namespace: str
    visibility: str = "public"
    members: dict[str, int] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # name -> head commit id
    forked_from: int | None = None
    import_polls: int = 0  # GETs left before a new fork reports import_status finished

    @property
    def namespace(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[1]


@dataclass
class MergeRequest:
    id: int
    iid: int
    project_id: int  # target project
    source_project_id: int
    source_branch: str
    target_branch: str
    title: str
    description: str
    author: str
    state: str = "opened"


class ApiError(Exception):
    def __init__(self, status: int, message: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FakeGitLab:
    """The state of the fake instance; ``url`` is its base URL once started."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.users: dict[str, int] = {}
        self.projects: dict[int, Project] = {}
        self.commits: dict[str, Commit] = {}
        self.mrs: list[MergeRequest] = []
        self.requests: list[tuple[str, str]] = []
        self.on_commit: Callable[[FakeGitLab, Project, dict[str, Any]], None] | None = None
        self.lock = threading.RLock()
        self._ids = itertools.count(100)
        self._server: ThreadingHTTPServer | None = None
        self.url = ""
        # a broken or hostile GitLab's paging: "repeat" answers page 1 for every page with
        # a rel="next" that never ends; next_elsewhere puts rel="next" on another origin
        self.paging_fault = ""
        self.next_elsewhere = ""

    # -- setup -------------------------------------------------------------------------
    def add_user(self, username: str, token: str) -> None:
        self.users[username] = len(self.users) + 1
        self.tokens[token] = username

    def add_project(self, path: str, files: dict[str, str], *, branch: str = "master",
                    members: dict[str, int] | None = None, visibility: str = "public",
                    forked_from: int | None = None) -> Project:
        project = Project(next(self._ids), path, visibility, dict(members or {}))
        project.forked_from = forked_from
        project.branches[branch] = self._new_commit(dict(files), None, "initial")
        self.projects[project.id] = project
        return project

    def _new_commit(self, files: dict[str, str], parent: str | None, message: str) -> str:
        sha = hashlib.sha1(json.dumps([files, parent, message, len(self.commits)],
                                      sort_keys=True).encode()).hexdigest()
        self.commits[sha] = Commit(sha, files, parent, message)
        return sha

    def push(self, project: Project, branch: str, path: str, content: str,
             message: str = "edit") -> str:
        """Commit directly, as another user would (for concurrency tests)."""
        head = project.branches[branch]
        files = dict(self.commits[head].files)
        files[path] = content
        project.branches[branch] = self._new_commit(files, head, message)
        return project.branches[branch]

    def file(self, project: Project, branch: str, path: str) -> str | None:
        head = project.branches.get(branch)
        return None if head is None else self.commits[head].files.get(path)

    def last_commit_for(self, project: Project, branch: str, path: str) -> str | None:
        sha = project.branches.get(branch)
        while sha is not None:
            commit = self.commits[sha]
            parent = self.commits[commit.parent] if commit.parent else None
            if commit.files.get(path) != (parent.files.get(path) if parent else None):
                return sha
            sha = commit.parent
        return None

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] not in ("GET", "HEAD")]

    def open_mrs(self, branch: str | None = None) -> list[MergeRequest]:
        return [m for m in self.mrs if m.state == "opened"
                and (branch is None or m.source_branch == branch)]

    def add_mr(self, source: Project, target: Project, source_branch: str, target_branch: str,
               author: str, title: str = "someone else's MR") -> MergeRequest:
        iid = 1 + sum(1 for m in self.mrs if m.project_id == target.id)
        mr = MergeRequest(next(self._ids), iid, target.id, source.id, source_branch,
                          target_branch, title, "", author)
        self.mrs.append(mr)
        return mr

    # -- server ------------------------------------------------------------------------
    def start(self) -> FakeGitLab:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _run(self, method: str) -> None:
                fake.handle(self, method)

            def do_GET(self) -> None:
                self._run("GET")

            def do_HEAD(self) -> None:
                self._run("HEAD")

            def do_POST(self) -> None:
                self._run("POST")

            def do_PUT(self) -> None:
                self._run("PUT")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- request handling --------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(req.path)
        raw_path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(req.headers.get("Content-Length") or 0)
        body_bytes = req.rfile.read(length) if length else b""
        body: dict[str, Any] = {}
        if body_bytes:
            if "json" in (req.headers.get("Content-Type") or ""):
                body = json.loads(body_bytes)
            else:
                body = {k: v[-1] for k, v in parse_qs(body_bytes.decode()).items()}
        with self.lock:
            self.requests.append((method, raw_path))
            try:
                status, payload, headers = self.route(method, raw_path, query, body,
                                                      req.headers.get("PRIVATE-TOKEN"))
            except ApiError as exc:
                status, payload, headers = exc.status, {"message": exc.message}, {}
        if isinstance(payload, bytes):
            data, ctype = payload, "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        req.send_response(status)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            req.send_header(key, value)
        req.end_headers()
        if method != "HEAD":
            req.wfile.write(data)

    def _user(self, token: str | None, required: bool) -> str | None:
        if token is None:
            if required:
                raise ApiError(401, "401 Unauthorized")
            return None
        if token not in self.tokens:
            raise ApiError(401, "401 Unauthorized")
        return self.tokens[token]

    def _project(self, ident: str, user: str | None) -> Project:
        ident = unquote(ident)
        found = None
        if ident.isdigit():
            found = self.projects.get(int(ident))
        else:
            found = next((p for p in self.projects.values()
                          if p.path_with_namespace == ident), None)
        if found is None or (found.visibility != "public" and
                             (user is None or user not in found.members)):
            raise ApiError(404, "404 Project Not Found")
        return found

    def _access(self, project: Project, user: str | None) -> int:
        return project.members.get(user, 0) if user else 0

    def project_json(self, p: Project, user: str | None) -> dict[str, Any]:
        level = self._access(p, user)
        data: dict[str, Any] = {
            "id": p.id, "name": p.name, "path": p.name,
            "path_with_namespace": p.path_with_namespace,
            "namespace": {"full_path": p.namespace, "path": p.namespace},
            "default_branch": "master", "visibility": p.visibility,
            "web_url": f"{self.url}/{p.path_with_namespace}",
            "permissions": {"project_access": {"access_level": level} if level else None,
                            "group_access": None},
        }
        if p.forked_from is not None:
            parent = self.projects[p.forked_from]
            data["forked_from_project"] = {"id": parent.id,
                                           "path_with_namespace": parent.path_with_namespace}
        if p.import_polls > 0:
            p.import_polls -= 1
            data["import_status"] = "scheduled"
        else:
            data["import_status"] = "finished"
        return data

    def mr_json(self, m: MergeRequest) -> dict[str, Any]:
        target = self.projects[m.project_id]
        return {"id": m.id, "iid": m.iid, "project_id": m.project_id,
                "source_project_id": m.source_project_id, "target_project_id": m.project_id,
                "source_branch": m.source_branch, "target_branch": m.target_branch,
                "title": m.title, "description": m.description, "state": m.state,
                "author": {"username": m.author},
                "web_url": f"{self.url}/{target.path_with_namespace}/-/merge_requests/{m.iid}"}

    def _page(self, items: list[Any], query: dict[str, str], path: str
              ) -> tuple[int, list[Any], dict[str, str]]:
        per_page = max(1, min(100, int(query.get("per_page", 20))))
        page = max(1, int(query.get("page", 1)))
        total_pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items)),
                   "X-Total-Pages": str(total_pages),
                   "X-Next-Page": str(page + 1) if page < total_pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}

        def link(n: int, rel: str) -> str:
            q = dict(query, page=str(n), per_page=str(per_page))
            qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(q.items()))
            return f'<{self.url}{path}?{qs}>; rel="{rel}"'

        if self.paging_fault == "repeat":
            chunk, total_pages = items[:per_page], page + 1
        links = [link(1, "first"), link(total_pages, "last")]
        if self.next_elsewhere and page < total_pages:
            links.insert(0, f'<{self.next_elsewhere}?page={page + 1}>; rel="next"')
        elif page < total_pages:
            links.insert(0, link(page + 1, "next"))
        if page > 1:
            links.insert(0, link(page - 1, "prev"))
        headers["Link"] = ", ".join(links)
        return 200, chunk, headers

    def route(self, method: str, path: str, query: dict[str, str], body: dict[str, Any],
              token: str | None) -> tuple[int, Any, dict[str, str]]:
        if not path.startswith("/api/v4/"):
            raise ApiError(404, "404 Not Found")
        segs = path[len("/api/v4/"):].split("/")
        user = self._user(token, required=method not in ("GET", "HEAD"))
        if segs == ["user"]:
            if user is None:
                raise ApiError(401, "401 Unauthorized")
            return 200, {"id": self.users[user], "username": user, "name": user.title(),
                         "web_url": f"{self.url}/{user}"}, {}
        if len(segs) < 2 or segs[0] != "projects":
            raise ApiError(404, "404 Not Found")
        project = self._project(segs[1], user)
        rest = segs[2:]
        if not rest and method == "GET":
            return 200, self.project_json(project, user), {}
        if rest[:2] == ["repository", "files"] and method in ("GET", "HEAD"):
            raw = rest[-1] == "raw" and len(rest) > 3
            file_path = unquote("/".join(rest[2:-1] if raw else rest[2:]))
            return self._get_file(project, file_path, query.get("ref", "master"), raw)
        if rest[:2] == ["repository", "branches"] and method == "GET" and len(rest) == 3:
            name = unquote(rest[2])
            if name not in project.branches:
                raise ApiError(404, "404 Branch Not Found")
            return 200, {"name": name, "commit": {"id": project.branches[name]}}, {}
        if rest == ["repository", "commits"] and method == "POST":
            assert user is not None
            return self._create_commit(project, user, body)
        if rest == ["forks"] and method == "GET":
            owned = query.get("owned", "").lower() == "true"  # requests sends "True"
            forks = [self.project_json(p, user) for p in self.projects.values()
                     if p.forked_from == project.id
                     and (not owned or self._access(p, user) >= OWNER)]
            return self._page(forks, query, path)
        if rest == ["fork"] and method == "POST":
            assert user is not None
            return self._fork(project, user, body)
        if rest == ["merge_requests"] and method == "GET":
            mrs = [self.mr_json(m) for m in self.mrs if m.project_id == project.id
                   and (not query.get("state") or query["state"] in ("all", m.state))
                   and (not query.get("source_branch")
                        or m.source_branch == query["source_branch"])]
            return self._page(mrs, query, path)
        if rest == ["merge_requests"] and method == "POST":
            assert user is not None
            return self._create_mr(project, user, body)
        if len(rest) == 2 and rest[0] == "merge_requests" and method == "PUT":
            assert user is not None
            return self._update_mr(project, user, int(rest[1]), body)
        raise ApiError(404, "404 Not Found")

    def _get_file(self, project: Project, file_path: str, ref: str, raw: bool
                  ) -> tuple[int, Any, dict[str, str]]:
        if ref not in project.branches:
            raise ApiError(404, "404 Commit Not Found")
        content = self.file(project, ref, file_path)
        if content is None:
            raise ApiError(404, "404 File Not Found")
        data = content.encode()
        last = self.last_commit_for(project, ref, file_path) or ""
        headers = {"X-Gitlab-File-Path": file_path, "X-Gitlab-Ref": ref,
                   "X-Gitlab-Last-Commit-Id": last, "X-Gitlab-Size": str(len(data))}
        if raw:
            return 200, data, headers
        return 200, {"file_name": file_path.rsplit("/", 1)[-1], "file_path": file_path,
                     "size": len(data), "encoding": "base64",
                     "content": base64.b64encode(data).decode(),
                     "content_sha256": hashlib.sha256(data).hexdigest(), "ref": ref,
                     "commit_id": project.branches[ref], "last_commit_id": last}, headers

    def _create_commit(self, project: Project, user: str, body: dict[str, Any]
                       ) -> tuple[int, Any, dict[str, str]]:
        for key in ("branch", "commit_message", "actions"):
            if key not in body:
                raise ApiError(400, f"{key} is missing")
        if self._access(project, user) < DEVELOPER:
            raise ApiError(403, "403 Forbidden")
        start_project = project
        if body.get("start_project") is not None:
            start_project = self._project(str(body["start_project"]), user)
            if start_project.id != project.id and project.forked_from != start_project.id:
                raise ApiError(403, "403 Forbidden")
        branch = body["branch"]
        start_branch = body.get("start_branch") or branch
        force = body.get("force") in (True, "true")
        if start_branch not in start_project.branches:
            raise ApiError(400, "You can only create or edit files when you are on a branch")
        different = start_branch != branch or start_project.id != project.id
        if different and branch in project.branches and not force:
            raise ApiError(400, f"A branch called '{branch}' already exists. Switch to that "
                                "branch in order to make changes")
        if self.on_commit is not None:
            hook, self.on_commit = self.on_commit, None
            hook(self, project, body)
        base = start_project.branches[start_branch]
        files = dict(self.commits[base].files)
        for action in body["actions"]:
            path = action["file_path"]
            if action["action"] != "update":
                raise ApiError(400, f"Unknown action type `{action['action']}`.")
            if path not in files:
                raise ApiError(400, "A file with this name doesn't exist")
            last = action.get("last_commit_id")
            if last and last != self.last_commit_for(start_project, start_branch, path):
                raise ApiError(400, f"The file has changed since you started editing it: {path}")
            files[path] = action["content"]
        sha = self._new_commit(files, base, body["commit_message"])
        project.branches[branch] = sha
        title = body["commit_message"].splitlines()[0]
        return 201, {"id": sha, "short_id": sha[:8], "title": title,
                     "message": body["commit_message"], "parent_ids": [base],
                     "web_url": f"{self.url}/{project.path_with_namespace}/-/commit/{sha}"}, {}

    def _fork(self, project: Project, user: str, body: dict[str, Any]
              ) -> tuple[int, Any, dict[str, str]]:
        namespace = body.get("namespace_path") or body.get("namespace") or user
        path = f"{namespace}/{project.name}"
        if any(p.path_with_namespace == path for p in self.projects.values()):
            raise ApiError(409, {"name": ["has already been taken"],
                                 "path": ["has already been taken"]})
        fork = Project(next(self._ids), path, "public", {user: OWNER},
                       dict(project.branches), project.id, import_polls=1)
        self.projects[fork.id] = fork
        return 201, self.project_json(fork, user), {}

    def _create_mr(self, source: Project, user: str, body: dict[str, Any]
                   ) -> tuple[int, Any, dict[str, str]]:
        if self._access(source, user) < DEVELOPER:
            raise ApiError(403, "403 Forbidden")
        target = source
        if body.get("target_project_id") is not None:
            target = self._project(str(body["target_project_id"]), user)
            if target.id != source.id and source.forked_from != target.id:
                raise ApiError(400, "target_project_id is not in the fork network")
        if body["source_branch"] not in source.branches:
            raise ApiError(422, ["Source branch does not exist"])
        for m in self.open_mrs(body["source_branch"]):
            if (m.source_project_id, m.project_id, m.target_branch) == (
                    source.id, target.id, body["target_branch"]):
                raise ApiError(409, ["Another open merge request already exists for this "
                                     f"source branch: !{m.iid}"])
        mr = self.add_mr(source, target, body["source_branch"], body["target_branch"], user,
                         body["title"])
        mr.description = body.get("description") or ""
        return 201, self.mr_json(mr), {}

    def _update_mr(self, target: Project, user: str, iid: int, body: dict[str, Any]
                   ) -> tuple[int, Any, dict[str, str]]:
        mr = next((m for m in self.mrs if m.project_id == target.id and m.iid == iid), None)
        if mr is None:
            raise ApiError(404, "404 Not found")
        if mr.author != user and self._access(target, user) < DEVELOPER:
            raise ApiError(403, "403 Forbidden")
        for key in ("title", "description"):
            if key in body:
                setattr(mr, key, body[key])
        return 200, self.mr_json(mr), {}
