"""A fake Harbor (REST API v2.0 subset) on 127.0.0.1, following the real server's behaviour.

Harbor cannot run in this test environment, so this stands in for it. Each behaviour below
is taken from Harbor's source (goharbor/harbor, ``api/v2.0/swagger.yaml`` and
``src/server``), not guessed:

* Errors are ``{"errors":[{"code","message"}]}`` with Harbor's codes (``src/lib/errors``) and
  messages (``The project named X already exists``, ``project X not found``, ...).
* Bad or missing Basic credentials do not fail by themselves: Harbor falls back to an
  anonymous security context, and each endpoint then answers ``401 UNAUTHORIZED``
  ("unauthorized"). The API sends no ``WWW-Authenticate`` (only ``/v2`` does).
* Every response sets a ``sid`` session cookie. A request *carrying* ``sid`` is a session
  request, and then POST/PUT/PATCH/DELETE need a valid ``X-Harbor-CSRF-Token`` or get
  ``403 FORBIDDEN "CSRF token invalid"`` (``middleware/csrf``, ``middleware/session``).
* The router works on the decoded path: ``a%2Fb`` becomes two segments and matches no route
  (404 ``path ... was not found``); ``a%252Fb`` is one segment that the handler decodes again.
* Lists page with ``page``/``page_size`` (default 10, max 100 -> 422 above), answer
  ``X-Total-Count`` and a ``Link`` whose URL is the *relative* request path with the query
  *unescaped*, joined by `` , `` (``handler/base.go Links``).
* A scan goes Pending -> Running -> Success (or ``scan_final``) over successive polls.
* Robot names are ``robot$<project>+<name>``; the robot then logs in with Basic auth.

``requests`` records every request; ``inject`` makes the next matching request fail with a
given status/code/message (412 preconditions, 5xx).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


@dataclass
class Recorded:
    method: str
    raw_path: str  # exactly as sent, before any decoding
    path: str  # decoded once, as Harbor's router sees it
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any
    status: int = 0


@dataclass
class Artifact:
    digest: str
    tags: list[str]
    scannable: bool = True
    vulnerabilities: dict[str, int] = field(default_factory=dict)
    fixable: int = 0
    scan_polls: int | None = None  # None: never scanned


@dataclass
class Injection:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: str
    message: str
    times: int


class HarborError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeHarbor:
    def __init__(self, users: dict[str, str] | None = None, robot_prefix: str = "robot$"
                 ) -> None:
        self.users = dict(users or {"admin": "Harbor12345"})
        self.robot_prefix = robot_prefix
        self.requests: list[Recorded] = []
        self.projects: dict[str, dict[str, Any]] = {}
        self.robots: dict[int, dict[str, Any]] = {}
        self.immutable: dict[int, list[dict[str, Any]]] = {}
        self.retentions: dict[int, dict[str, Any]] = {}
        self.artifacts: dict[tuple[str, str], dict[str, Artifact]] = {}
        self.injections: list[Injection] = []
        self.scan_steps = ["Pending", "Running"]
        self.scan_final = "Success"
        self.csrf_tokens: set[str] = set()
        # a broken or hostile Harbor's paging: "repeat" answers page 1 for every page,
        # "endless" invents a fresh page each time; both always link rel="next"
        self.paging_fault = ""
        self._ids = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._stopped = False

    # ------------------------------------------------------------------ test controls
    def start(self) -> FakeHarbor:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()

    def inject(self, method: str, path_regex: str, status: int, code: str, message: str,
               times: int = 1) -> None:
        self.injections.append(Injection(method, re.compile(path_regex), status, code,
                                         message, times))

    def add_project(self, name: str, **metadata: str) -> dict[str, Any]:
        with self._lock:
            return self._create_project(name, {"public": "false", **metadata})

    def add_artifact(self, project: str, repository: str, tag: str, *, scannable: bool = True,
                     vulnerabilities: dict[str, int] | None = None, fixable: int = 0
                     ) -> Artifact:
        digest = "sha256:" + secrets.token_hex(32)
        art = Artifact(digest, [tag], scannable, dict(vulnerabilities or {}), fixable)
        refs = self.artifacts.setdefault((project, repository), {})
        refs[tag] = refs[digest] = art
        return art

    def calls(self, method: str, contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and contains in r.path]

    # ------------------------------------------------------------------ state helpers
    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _create_project(self, name: str, metadata: dict[str, str]) -> dict[str, Any]:
        project = {"project_id": self._next_id(), "name": name, "metadata": dict(metadata),
                   "repo_count": 0}
        self.projects[name] = project
        return project

    def _project(self, name_or_id: str, by_name: bool = True) -> dict[str, Any]:
        if not by_name and name_or_id.isdigit():
            for project in self.projects.values():
                if project["project_id"] == int(name_or_id):
                    return project
            raise HarborError(404, "NOT_FOUND", f"project {name_or_id} not found")
        if name_or_id not in self.projects:
            raise HarborError(404, "NOT_FOUND", f"project {name_or_id} not found")
        return self.projects[name_or_id]

    # ------------------------------------------------------------------ HTTP plumbing
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                fake._serve(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw_body = h.rfile.read(length) if length else b""
        body: Any = None
        headers = {k.lower(): v for k, v in h.headers.items()}
        record = Recorded(h.command, h.path, unquote(parts.path),
                          parse_qs(parts.query, keep_blank_values=True), headers, None)
        status, payload, extra = 500, None, {}
        try:
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError as exc:
                    raise HarborError(400, "BAD_REQUEST", f"parsing body body from \"\" "
                                      f"failed, because {exc}") from None
            record.body = body
            with self._lock:
                self.requests.append(record)
                status, payload, extra = self._dispatch(record, body)
        except HarborError as err:
            status, payload = err.status, {"errors": [{"code": err.code,
                                                       "message": err.message}]}
        record.status = status
        data = b"" if payload is None else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        h.send_response(status)
        content_type = "text/plain" if isinstance(payload, str) else "application/json"
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("X-Request-Id", secrets.token_hex(8))
        # Harbor hands out a session cookie (and a CSRF token) on every answer.
        token = secrets.token_urlsafe(16)
        self.csrf_tokens.add(token)
        h.send_header("Set-Cookie", f"sid={secrets.token_hex(16)}; Path=/; HttpOnly")
        h.send_header("Set-Cookie", f"_gorilla_csrf={secrets.token_hex(16)}; Path=/")
        h.send_header("X-Harbor-CSRF-Token", token)
        for key, value in extra.items():
            h.send_header(key, value)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    # ------------------------------------------------------------------ the API
    def _principal(self, rec: Recorded) -> tuple[str, dict[str, Any] | None] | None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        if user in self.users and self.users[user] == password:
            return user, None
        for robot in self.robots.values():
            if robot["name"] == user and robot["secret"] == password:
                return user, robot
        return None  # Harbor: anonymous, endpoints then answer 401

    def _dispatch(self, rec: Recorded, body: Any
                  ) -> tuple[int, Any, dict[str, str]]:
        method = rec.method
        cookies = rec.headers.get("cookie", "")
        if (re.search(r"(^|;\s*)sid=", cookies) and method in ("POST", "PUT", "PATCH", "DELETE")
                and rec.headers.get("x-harbor-csrf-token") not in self.csrf_tokens):
            raise HarborError(403, "FORBIDDEN", "CSRF token invalid")
        for inj in self.injections:
            if inj.times > 0 and inj.method == method and inj.pattern.search(rec.path):
                inj.times -= 1
                raise HarborError(inj.status, inj.code, inj.message)
        if not rec.path.startswith("/api/v2.0/"):
            raise HarborError(404, "NOT_FOUND", f"path {rec.path} was not found")
        segs = rec.path[len("/api/v2.0/"):].rstrip("/").split("/")
        if segs == ["ping"] and method == "GET":
            return 200, "Pong", {}
        who = self._principal(rec)
        if who is None:
            raise HarborError(401, "UNAUTHORIZED", "unauthorized")
        _user, robot = who
        by_name = rec.headers.get("x-is-resource-name", "").lower() == "true"
        route = (method, *segs)
        match route:
            case ("HEAD", "projects"):
                name = (rec.query.get("project_name") or [""])[0]
                self._project(name)
                return 200, None, {}
            case ("POST", "projects"):
                self._admin(robot)
                return self._post_project(body)
            case ("GET", "projects", p):
                return 200, self._project(p, by_name), {}
            case ("PUT", "projects", p):
                self._admin(robot)
                project = self._project(p, by_name)
                project["metadata"].update({k: str(v) for k, v in
                                            ((body or {}).get("metadata") or {}).items()})
                return 200, None, {}
            case ("POST", "robots"):
                self._admin(robot)
                return self._post_robot(body)
            case ("GET", "robots"):
                self._admin(robot)
                return self._list_robots(rec)
            case ("PATCH", "robots", rid):
                self._admin(robot)
                found = self.robots.get(int(rid)) if rid.isdigit() else None
                if found is None:
                    raise HarborError(404, "NOT_FOUND", f"robot {rid} not found")
                found["secret"] = "Rb" + secrets.token_hex(16)
                return 200, {"secret": found["secret"]}, {}
            case ("GET", "projects", p, "immutabletagrules"):
                project = self._project(p, by_name)
                return self._page(rec, self.immutable.get(project["project_id"], []))
            case ("POST", "projects", p, "immutabletagrules"):
                self._admin(robot)
                return self._post_immutable(self._project(p, by_name), rec, body)
            case ("PUT", "projects", p, "immutabletagrules", rule_id):
                self._admin(robot)
                rules = self.immutable.get(self._project(p, by_name)["project_id"], [])
                for index, rule in enumerate(rules):
                    if str(rule["id"]) == rule_id:
                        rules[index] = dict(body, id=rule["id"])
                        return 200, None, {}
                raise HarborError(404, "NOT_FOUND", f"immutable rule {rule_id} not found")
            case ("POST", "retentions"):
                self._admin(robot)
                return self._post_retention(rec, body)
            case ("GET", "retentions", rid) if rid.isdigit() and int(rid) in self.retentions:
                return 200, self.retentions[int(rid)], {}
            case ("PUT", "retentions", rid) if rid.isdigit() and int(rid) in self.retentions:
                self._admin(robot)
                self._check_rules(body)
                self.retentions[int(rid)] = dict(body, id=int(rid))
                return 200, None, {}
            case ("GET", "projects", p, "repositories", repo, "artifacts", ref):
                return 200, self._artifact_json(self._artifact(p, unquote(repo), ref), rec), {}
            case ("POST", "projects", p, "repositories", repo, "artifacts", ref, "scan"):
                if robot is not None and not _robot_can(robot, p, "scan", "create"):
                    raise HarborError(403, "FORBIDDEN", "forbidden")
                art = self._artifact(p, unquote(repo), ref)
                if not art.scannable:
                    raise HarborError(422, "UNPROCESSABLE_ENTITY",
                                      f"artifact {art.digest} is not scannable")
                art.scan_polls = 0
                return 202, None, {}
        raise HarborError(404, "NOT_FOUND", f"path {rec.path} was not found")

    @staticmethod
    def _admin(robot: dict[str, Any] | None) -> None:
        if robot is not None:
            raise HarborError(403, "FORBIDDEN", "forbidden")

    def _page(self, rec: Recorded, items: list[dict[str, Any]]
              ) -> tuple[int, Any, dict[str, str]]:
        page = int((rec.query.get("page") or ["1"])[0])
        size = int((rec.query.get("page_size") or ["10"])[0])
        if size > 100:
            raise HarborError(422, "UNPROCESSABLE_ENTITY",
                              "page_size in query should be less than or equal to 100")
        chunk = items[(page - 1) * size: page * size]
        headers = {"X-Total-Count": str(len(items))}
        if self.paging_fault == "repeat":
            chunk, headers = items[:size], {}
        elif self.paging_fault == "endless":
            chunk = [{"id": 100_000 + page * size + i, "name": f"ghost-{page}-{i}"}
                     for i in range(size)]
            headers = {}
        links = []
        base = urlsplit(rec.raw_path).path

        def link(number: int, rel: str) -> str:
            query = {k: v[0] for k, v in rec.query.items()}
            query.update(page=str(number), page_size=str(size))
            # Harbor un-escapes the query it puts into Link (handler/base.go)
            text = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
            return f'<{base}?{text}>; rel="{rel}"'

        if page > 1 and (page - 1) * size < len(items):
            links.append(link(page - 1, "prev"))
        if page * size < len(items) or self.paging_fault:
            links.append(link(page + 1, "next"))
        if links:
            headers["Link"] = " , ".join(links)
        return 200, chunk, headers

    def _post_project(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("project_name"), str):
            raise HarborError(422, "UNPROCESSABLE_ENTITY",
                              "project_name in body is required")
        name = body["project_name"]
        if len(name) > 255:
            raise HarborError(422, "UNPROCESSABLE_ENTITY",
                              "project_name in body should be at most 255 chars long")
        if not NAME_RE.match(name):
            raise HarborError(400, "BAD_REQUEST", "project name is not in lower case or "
                              "contains illegal characters")
        if name in self.projects:
            raise HarborError(409, "CONFLICT", f"The project named {name} already exists")
        metadata = {k: str(v) for k, v in (body.get("metadata") or {}).items()}
        metadata.setdefault("public", "false")
        project = self._create_project(name, metadata)
        return 201, None, {"Location": f"/api/v2.0/projects/{project['project_id']}"}

    def _post_robot(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("duration", 0), int):
            raise HarborError(422, "UNPROCESSABLE_ENTITY",
                              "duration in body must be of type int64")
        name = str(body.get("name", ""))
        if not NAME_RE.match(name):
            raise HarborError(400, "BAD_REQUEST", "robot name is not in lower case or "
                              "contains illegal characters")
        duration = body.get("duration")
        if duration is None or (duration != -1 and duration <= 0):
            raise HarborError(400, "BAD_REQUEST", f"bad request error duration input: "
                              f"{duration}, duration must be either -1(Never) or a positive "
                              f"integer")
        perms = body.get("permissions") or []
        if body.get("level") != "project" or not perms or not perms[0].get("access"):
            raise HarborError(400, "BAD_REQUEST", "bad request empty permission")
        project = self._project(str(perms[0].get("namespace")))
        full = f"{self.robot_prefix}{project['name']}+{name}"
        if any(r["name"] == full for r in self.robots.values()):
            raise HarborError(409, "CONFLICT", f"robot account {project['project_id']}:"
                              f"{project['name']}+{name} already exists")
        rid = self._next_id()
        robot = {"id": rid, "name": full, "secret": "Rb" + secrets.token_hex(16),
                 "level": "project", "duration": duration, "permissions": perms,
                 "project_id": project["project_id"], "disable": False,
                 "expires_at": -1 if duration == -1 else 1_700_000_000 + duration * 86400}
        self.robots[rid] = robot
        return 201, {"id": rid, "name": full, "secret": robot["secret"],
                     "creation_time": "2026-11-23T00:00:00.000Z",
                     "expires_at": robot["expires_at"]}, {"Location": f"/api/v2.0/robots/{rid}"}

    def _list_robots(self, rec: Recorded) -> tuple[int, Any, dict[str, str]]:
        query = dict(kv.split("=", 1) for kv in (rec.query.get("q") or [""])[0].split(",")
                     if "=" in kv)
        items = [{k: v for k, v in r.items() if k != "secret"} for r in self.robots.values()
                 if query.get("Level", "project") == r["level"]
                 and str(r["project_id"]) == query.get("ProjectID", str(r["project_id"]))]
        return self._page(rec, items)

    def _post_immutable(self, project: dict[str, Any], rec: Recorded, body: Any
                        ) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("tag_selectors"), list):
            raise HarborError(422, "UNPROCESSABLE_ENTITY",
                              "tag_selectors in body must be of type array")
        rules = self.immutable.setdefault(project["project_id"], [])
        strip = {k: v for k, v in body.items() if k not in ("id", "project_id")}
        if any({k: v for k, v in r.items() if k not in ("id", "project_id")} == strip
               for r in rules):
            raise HarborError(409, "CONFLICT", "immutable rule already exists")
        rid = self._next_id()
        rules.append(dict(body, id=rid, project_id=project["project_id"]))
        return 201, None, {"Location": f"{urlsplit(rec.raw_path).path}/{rid}"}

    @staticmethod
    def _check_rules(policy: dict[str, Any]) -> None:
        seen: list[str] = []
        for index, rule in enumerate(policy.get("rules") or []):
            key = json.dumps({k: v for k, v in rule.items() if k != "id"}, sort_keys=True)
            if key in seen:
                raise HarborError(409, "CONFLICT", f"rule {index} is conflict with rule "
                                  f"{seen.index(key)}")
            seen.append(key)

    def _post_retention(self, rec: Recorded, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
            raise HarborError(422, "UNPROCESSABLE_ENTITY", "rules in body must be of type array")
        self._check_rules(body)
        scope = body.get("scope") or {}
        if scope.get("level") != "project":
            raise HarborError(400, "BAD_REQUEST", f"scope {scope.get('level')} is not support")
        ref = scope.get("ref")
        project = next((p for p in self.projects.values() if p["project_id"] == ref), None)
        if project is None:
            raise HarborError(400, "BAD_REQUEST", f"invalid Project id {ref}")
        if project["metadata"].get("retention_id"):
            raise HarborError(400, "BAD_REQUEST", f"project {ref} already has retention "
                              f"policy {project['metadata']['retention_id']}")
        rid = self._next_id()
        self.retentions[rid] = dict(body, id=rid)
        project["metadata"]["retention_id"] = str(rid)
        return 201, None, {"Location": f"{urlsplit(rec.raw_path).path}/{rid}"}

    def _artifact(self, project: str, repository: str, reference: str) -> Artifact:
        self._project(project)
        art = self.artifacts.get((project, repository), {}).get(reference)
        if art is None:
            raise HarborError(404, "NOT_FOUND",
                              f"artifact {project}/{repository}:{reference} not found")
        return art

    def _artifact_json(self, art: Artifact, rec: Recorded) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": art.digest, "tags": [{"name": t} for t in art.tags],
                                "media_type": "application/vnd.oci.image.manifest.v1+json"}
        wants = (rec.query.get("with_scan_overview") or ["false"])[0] == "true"
        if wants and art.scan_polls is not None:
            step = art.scan_polls
            art.scan_polls += 1
            status = (self.scan_steps[step] if step < len(self.scan_steps)
                      else self.scan_final)
            report: dict[str, Any] = {"report_id": "r-1", "scan_status": status,
                                      "scanner": {"name": "Trivy", "vendor": "Aqua Security",
                                                  "version": "v0.58.1"}}
            if status == "Running":
                report["complete_percent"] = 50
            if status == "Success":
                counts = art.vulnerabilities
                worst = next((s for s in ("Critical", "High", "Medium", "Low", "Unknown")
                              if counts.get(s)), "None")
                report.update(severity=worst, complete_percent=100, duration=3,
                              summary={"total": sum(counts.values()), "fixable": art.fixable,
                                       "summary": counts})
            data["scan_overview"] = {REPORT_MIME: report}
        return data


def _robot_can(robot: dict[str, Any], project: str, resource: str, action: str) -> bool:
    return any(p.get("namespace") == project and any(
        a.get("resource") == resource and a.get("action") == action
        for a in p.get("access") or []) for p in robot["permissions"])
