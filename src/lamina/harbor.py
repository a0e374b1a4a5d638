"""A small typed client for the Harbor REST API v2.0: project bootstrap, robots, tag
immutability, retention and vulnerability scans.

Why our own ~400 lines instead of a generated client: the publishing pipeline needs a dozen
endpoints, and the things that break Harbor scripts in the field are exactly the ones a
generic client hides (see ``notes/registries.md``):

* **No cookies.** Harbor answers every API response with a ``sid`` session cookie. A client
  that sends it back "carries a session", and Harbor's CSRF middleware then protects that
  request like a browser's: POST/PUT/PATCH/DELETE without ``X-Harbor-CSRF-Token`` get
  ``403 CSRF token invalid`` (goharbor/harbor#12455, #16744, #15994;
  ``src/server/middleware/csrf/csrf.go``). Basic auth on every request and a cookie jar
  whose policy refuses every cookie keep each call stateless.
* **Double encoding.** A repository name with ``/`` goes into the path encoded twice
  (``a/b`` -> ``a%252Fb``); encoded once, Harbor's router sees extra path segments -> 404.
* **Paging.** Lists come in pages (``page``/``page_size``, at most 100) with ``X-Total-Count``
  and a ``Link: <...>; rel="next"`` header. Harbor writes that link with its query string
  *unescaped* (``src/server/v2.0/handler/base.go``), so a ``+`` in ``q=name=robot$p+ci``
  would come back as a space if the URL were replayed. We take ``rel="next"`` as the signal
  and ask for the next page with our own, correctly encoded parameters.
* **Robot names contain ``$``** (``robot$<project>+<name>``). They are only ever passed as
  Python strings, never through a shell, and Basic credentials are encoded as UTF-8 bytes.

Errors become one-line :class:`~lamina.errors.RegistryError` s naming the operation, the HTTP
status and Harbor's own message (``{"errors":[{"code":..., "message":...}]}``), passed
through :func:`lamina.redact.redact` so a password or robot secret can never leak into them.
"""

from __future__ import annotations

import base64
import http.cookiejar
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from lamina import redact
from lamina.errors import RegistryError, UsageError

API = "/api/v2.0"
MAX_PAGE_SIZE = 100
# Report MIME types Harbor's scanners produce; asked for explicitly so older scanners answer too.
VULN_REPORT_TYPES = ("application/vnd.security.vulnerability.report; version=1.1",
                     "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0")
SEVERITIES = ("Critical", "High", "Medium", "Low", "Unknown", "None")
# Scan job states (src/jobservice/job/status.go); anything else ends the poll.
SCAN_RUNNING = ("Pending", "Scheduled", "Running")
DEFAULT_ROBOT_ACCESS: tuple[tuple[str, str], ...] = (("repository", "push"),
                                                     ("repository", "pull"))
SCAN_ROBOT_ACCESS: tuple[tuple[str, str], ...] = (("artifact", "read"), ("scan", "create"))
# Daily at midnight; Harbor cron has a seconds field. Without a schedule a retention policy
# exists but never runs, which is not what "keep the latest N" means to anyone.
DEFAULT_RETENTION_CRON = "0 0 0 * * *"

_HINTS = {
    401: "check LAMINA_HARBOR_USERNAME/LAMINA_HARBOR_PASSWORD (a robot name keeps its "
         "literal '$')",
    403: "the account lacks this permission in Harbor",
    412: "a Harbor policy forbids this (e.g. an immutable tag)",
}


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    public: bool
    metadata: dict[str, str]
    action: str  # created | updated | unchanged


@dataclass(frozen=True)
class Robot:
    id: int
    name: str  # full login name, e.g. robot$hep+ci
    secret: str = field(repr=False)
    expires_at: int  # unix time, -1 = never
    action: str  # created | refreshed


@dataclass(frozen=True)
class ImmutableRule:
    id: int | None
    pattern: str
    action: str  # created | enabled | unchanged


@dataclass(frozen=True)
class Retention:
    id: int
    keep_latest: int
    pattern: str
    action: str  # created | updated | unchanged


@dataclass(frozen=True)
class ScanSummary:
    reference: str  # project/repository:tag or @digest
    digest: str
    status: str
    severity: str
    counts: dict[str, int]
    total: int
    fixable: int
    scanner: str

    def at_least(self, severity: str) -> int:
        """Vulnerabilities at ``severity`` or worse (for ``--fail-on``)."""
        ranked = SEVERITIES[: SEVERITIES.index(severity) + 1]
        return sum(self.counts.get(level, 0) for level in ranked)


def encode_repository(name: str) -> str:
    """Harbor wants ``/`` in repository names URL-encoded twice: ``a/b`` -> ``a%252Fb``."""
    return quote(quote(name, safe=""), safe="")


def _basic(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _no_cookies() -> http.cookiejar.DefaultCookiePolicy:
    # An empty allow-list refuses every domain: Set-Cookie is ignored, nothing is ever sent.
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


def _next_link(header: str) -> bool:
    return any(re.search(r';\s*rel="?next"?', part) for part in header.split(","))


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _id_from_location(resp: requests.Response) -> int | None:
    match = re.search(r"/(\d+)/?$", resp.headers.get("Location", ""))
    return int(match.group(1)) if match else None


class HarborClient:
    """Stateless Basic-auth calls against one Harbor; see the module docstring for why."""

    def __init__(self, base_url: str, username: str, password: str,
                 verify: bool | str = True, *, timeout: float = 30.0,
                 page_size: int = MAX_PAGE_SIZE) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"Harbor URL must look like https://harbor.example.org, "
                             f"not '{_one_line(base_url, 80)}'")
        if parts.username or parts.password:
            raise UsageError("Harbor URL must not contain credentials; use "
                             "LAMINA_HARBOR_USERNAME and LAMINA_HARBOR_PASSWORD")
        if not username or not password:
            raise UsageError("Harbor credentials missing: set LAMINA_HARBOR_USERNAME and "
                             "LAMINA_HARBOR_PASSWORD")
        redact.register(password)
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._auth = _basic(username, password)
        self.verify = verify
        self.timeout = timeout
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.session = requests.Session()
        self.session.cookies.set_policy(_no_cookies())

    # ------------------------------------------------------------------ transport
    def request(self, what: str, method: str, path: str, *,
                params: Mapping[str, str | int] | None = None, body: Any = None,
                ok: Sequence[int] = (200,), headers: Mapping[str, str] | None = None
                ) -> requests.Response:
        """One API call; any status outside ``ok`` becomes a one-line RegistryError."""
        url = f"{self.base_url}{API}{path}"
        sent = {"Authorization": self._auth, "Accept": "application/json"}
        sent.update(headers or {})
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE override Session.verify.
            resp = self.session.request(method, url, params=params, json=body, headers=sent,
                                        verify=self.verify, timeout=self.timeout,
                                        allow_redirects=False)
        except requests.exceptions.SSLError:
            raise RegistryError(f"Harbor {what}: TLS verification of {self.base_url} failed "
                                f"(pass --ca-bundle FILE with the site CA)") from None
        except requests.RequestException as exc:
            raise RegistryError(f"Harbor {what}: cannot reach {self.base_url} "
                                f"({type(exc).__name__})") from None
        self.session.cookies.clear()  # belt and braces: the policy already refuses them
        if resp.status_code in ok:
            return resp
        raise self._error(what, resp)

    def _error(self, what: str, resp: requests.Response) -> RegistryError:
        status = resp.status_code
        if 300 <= status < 400:
            where = resp.headers.get("Location", "?")
            return RegistryError(f"Harbor {what}: {status} redirect to {where}; "
                                 f"use that address as --url")
        detail = ""
        try:
            errors = resp.json().get("errors") or []
            detail = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors
                               if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = resp.text if status < 500 else ""
        reason = resp.reason or ""
        text = f"Harbor {what}: {status} {reason}".rstrip()
        if detail:
            text += f": {detail}"
        hint = _HINTS.get(status)
        if status == 403 and "csrf" in detail.lower():
            hint = "a session cookie was sent back to Harbor; API calls must not keep cookies"
        if hint:
            text += f" ({hint})"
        return RegistryError(redact.redact(_one_line(text, 400)))

    def paged(self, what: str, path: str, params: Mapping[str, str | int] | None = None,
              headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """All items of a list endpoint, page by page (see the module docstring on Link)."""
        page = 1
        seen = 0
        while True:
            query = dict(params or {}, page=page, page_size=self.page_size)
            resp = self.request(what, "GET", path, params=query, headers=headers)
            items = resp.json() or []
            if not isinstance(items, list):
                raise RegistryError(f"Harbor {what}: expected a list, got {type(items).__name__}")
            yield from items
            seen += len(items)
            total = resp.headers.get("X-Total-Count")
            more = _next_link(resp.headers.get("Link", ""))
            if not items or not more or (total and total.isdigit() and seen >= int(total)):
                return
            page += 1

    # ------------------------------------------------------------------ projects
    def _project_path(self, project: str) -> str:
        return f"/projects/{quote(project, safe='')}"

    # A project name like "2024" would be read as a project id without this header.
    _BY_NAME: ClassVar[dict[str, str]] = {"X-Is-Resource-Name": "true"}

    def get_project(self, name: str) -> dict[str, Any]:
        resp = self.request(f"get project '{name}'", "GET", self._project_path(name),
                            headers=self._BY_NAME)
        data: dict[str, Any] = resp.json()
        return data

    def project_exists(self, name: str) -> bool:
        resp = self.request(f"look up project '{name}'", "HEAD", "/projects",
                            params={"project_name": name}, ok=(200, 404))
        return resp.status_code == 200

    def ensure_project(self, name: str, public: bool = False,
                       metadata: Mapping[str, str | bool] | None = None) -> Project:
        """Create the project, or bring the given metadata keys of an existing one in line."""
        wanted = {k: (("true" if v else "false") if isinstance(v, bool) else str(v))
                  for k, v in (metadata or {}).items()}
        wanted["public"] = "true" if public else "false"
        action = "unchanged"
        if not self.project_exists(name):
            resp = self.request(f"create project '{name}'", "POST", "/projects",
                                body={"project_name": name, "metadata": wanted},
                                ok=(201, 409))
            action = "created" if resp.status_code == 201 else "unchanged"  # 409: a racer won
        current = self.get_project(name)
        have = {str(k): str(v) for k, v in (current.get("metadata") or {}).items()}
        differing = {k: v for k, v in wanted.items() if have.get(k) != v}
        if differing:
            self.request(f"update project '{name}'", "PUT", self._project_path(name),
                         body={"metadata": differing}, headers=self._BY_NAME)
            have.update(differing)
            action = "updated" if action == "unchanged" else action
        return Project(id=int(current["project_id"]), name=name,
                       public=have.get("public") == "true", metadata=have, action=action)

    # ------------------------------------------------------------------ robots
    def create_robot(self, project: str, name: str, duration_days: int = -1,
                     access: Sequence[tuple[str, str]] = DEFAULT_ROBOT_ACCESS,
                     refresh_if_exists: bool = False, description: str = "") -> Robot:
        """A project robot account; Harbor shows its secret only in this answer.

        If the robot exists, its secret cannot be read back. Rotating it silently would break
        every CI job using the old one, so that happens only with ``refresh_if_exists``
        (PATCH /robots/{id} with an empty secret: Harbor generates a new one).
        """
        if duration_days != -1 and duration_days <= 0:
            raise UsageError("robot duration must be a positive number of days or -1 (never)")
        what = f"create robot '{name}' in project '{project}'"
        body = {
            "name": name,
            "description": description or "created by lamina harbor bootstrap",
            "level": "project",
            "duration": duration_days,
            "disable": False,
            "permissions": [{"kind": "project", "namespace": project,
                             "access": [{"resource": r, "action": a} for r, a in access]}],
        }
        resp = self.request(what, "POST", "/robots", body=body, ok=(201, 409))
        if resp.status_code == 201:
            data = resp.json()
            secret = str(data.get("secret") or "")
            redact.register(secret)
            return Robot(id=int(data["id"]), name=str(data["name"]), secret=secret,
                         expires_at=int(data.get("expires_at", -1)), action="created")
        full = f"{project}+{name}"
        if not refresh_if_exists:
            raise RegistryError(
                f"Harbor {what}: robot account for '{full}' already exists and its secret "
                f"cannot be read back; pass --refresh-robot-secret to issue a new one (the "
                f"old secret stops working)")
        project_id = int(self.get_project(project)["project_id"])
        found = next((r for r in self.paged(
            f"list robots of project '{project}'", "/robots",
            {"q": f"Level=project,ProjectID={project_id}"})
            if str(r.get("name", "")).endswith(full)
            and "+" not in str(r.get("name", ""))[: -len(full)]), None)
        if found is None:
            raise RegistryError(f"Harbor {what}: Harbor reports it exists but it is not "
                                f"listed in project '{project}'")
        robot_id = int(found["id"])
        sec = self.request(f"refresh secret of robot '{found['name']}'", "PATCH",
                           f"/robots/{robot_id}", body={}).json()
        secret = str(sec.get("secret") or "")
        redact.register(secret)
        return Robot(id=robot_id, name=str(found["name"]), secret=secret,
                     expires_at=int(found.get("expires_at", -1)), action="refreshed")

    # ------------------------------------------------------------------ immutability
    @staticmethod
    def _selectors(pattern: str, untagged: bool | None = None) -> dict[str, Any]:
        tag: dict[str, str] = {"kind": "doublestar", "decoration": "matches", "pattern": pattern}
        if untagged is not None:
            tag["extras"] = '{"untagged":%s}' % ("true" if untagged else "false")
        return {"tag_selectors": [tag],
                "scope_selectors": {"repository": [
                    {"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}

    @staticmethod
    def _matches(rule: Mapping[str, Any], pattern: str) -> bool:
        tags = rule.get("tag_selectors") or []
        repos = (rule.get("scope_selectors") or {}).get("repository") or []
        return (len(tags) == 1 and tags[0].get("pattern") == pattern
                and tags[0].get("decoration") == "matches"
                and len(repos) == 1 and repos[0].get("pattern") == "**"
                and repos[0].get("decoration") == "repoMatches")

    def set_immutable_rule(self, project: str, tag_pattern: str) -> ImmutableRule:
        """Tags matching ``tag_pattern`` (doublestar, all repositories) become immutable;
        an existing equal rule is reused (and enabled if it was disabled)."""
        path = f"{self._project_path(project)}/immutabletagrules"
        for rule in self.paged(f"list immutable tag rules of '{project}'", path,
                               headers=self._BY_NAME):
            if self._matches(rule, tag_pattern):
                if not rule.get("disabled"):
                    return ImmutableRule(int(rule["id"]), tag_pattern, "unchanged")
                self.request(f"enable immutable tag rule '{tag_pattern}'", "PUT",
                             f"{path}/{int(rule['id'])}", body=dict(rule, disabled=False),
                             headers=self._BY_NAME)
                return ImmutableRule(int(rule["id"]), tag_pattern, "enabled")
        body = {"action": "immutable", "template": "immutable_template", "disabled": False,
                "priority": 0, **self._selectors(tag_pattern)}
        resp = self.request(f"create immutable tag rule '{tag_pattern}' in '{project}'",
                            "POST", path, body=body, ok=(201,), headers=self._BY_NAME)
        return ImmutableRule(_id_from_location(resp), tag_pattern, "created")

    # ------------------------------------------------------------------ retention
    def set_retention(self, project: str, keep_latest_n: int, tag_pattern: str = "**",
                      cron: str = DEFAULT_RETENTION_CRON) -> Retention:
        """Keep the ``keep_latest_n`` most recently pushed tags matching ``tag_pattern`` in
        every repository of the project.

        Harbor allows one retention policy per project (``metadata.retention_id``); we add or
        adjust our rule in it and leave other rules and an existing schedule alone. Untagged
        artifacts are excluded from the rule: per-arch children of a multi-arch index are
        often untagged, and retention must not delete them (goharbor/harbor#11273).
        """
        if keep_latest_n < 1:
            raise UsageError("--keep must be at least 1")
        what = f"set retention of '{project}'"
        info = self.get_project(project)
        rule = {"disabled": False, "action": "retain", "template": "latestPushedK",
                "priority": 0, "params": {"latestPushedK": keep_latest_n},
                **self._selectors(tag_pattern, untagged=False)}
        existing = (info.get("metadata") or {}).get("retention_id")
        if not existing:
            policy = {"algorithm": "or", "rules": [rule],
                      "trigger": {"kind": "Schedule", "references": {},
                                  "settings": {"cron": cron}},
                      "scope": {"level": "project", "ref": int(info["project_id"])}}
            resp = self.request(what, "POST", "/retentions", body=policy, ok=(201,))
            rid = _id_from_location(resp)
            if rid is None:  # older Harbor: no Location; the project metadata knows
                rid = int((self.get_project(project).get("metadata") or {})["retention_id"])
            return Retention(rid, keep_latest_n, tag_pattern, "created")
        rid = int(existing)
        current = self.request(what, "GET", f"/retentions/{rid}").json()
        rules = list(current.get("rules") or [])
        for index, old in enumerate(rules):
            if old.get("template") == "latestPushedK" and self._matches(old, tag_pattern):
                have = (old.get("params") or {}).get("latestPushedK")
                if str(have) == str(keep_latest_n) and not old.get("disabled"):
                    return Retention(rid, keep_latest_n, tag_pattern, "unchanged")
                rules[index] = dict(old, disabled=False,
                                    params={"latestPushedK": keep_latest_n})
                break
        else:
            rules.append(rule)
        self.request(what, "PUT", f"/retentions/{rid}", body=dict(current, rules=rules))
        return Retention(rid, keep_latest_n, tag_pattern, "updated")

    # ------------------------------------------------------------------ scans
    def _artifact_path(self, project: str, repository: str, reference: str) -> str:
        return (f"{self._project_path(project)}/repositories/{encode_repository(repository)}"
                f"/artifacts/{quote(reference, safe=':')}")

    def scan_overview(self, project: str, repository: str, reference: str
                      ) -> tuple[str, dict[str, Any] | None]:
        """(digest, the vulnerability report summary or None if never scanned)."""
        art = self.request(
            f"get artifact {project}/{repository}{_ref_text(reference)}", "GET",
            self._artifact_path(project, repository, reference),
            params={"with_scan_overview": "true"},
            headers={"X-Accept-Vulnerabilities": ", ".join(VULN_REPORT_TYPES)}).json()
        overview = art.get("scan_overview") or {}
        report = next((overview[m] for m in VULN_REPORT_TYPES if m in overview), None)
        if report is None and overview:
            report = next(iter(overview.values()))
        return str(art.get("digest", "")), report

    def scan(self, project: str, repository: str, reference: str, *, timeout: float = 600.0,
             interval: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> ScanSummary:
        """Trigger a vulnerability scan and wait (bounded) for its summary."""
        ref_text = f"{project}/{repository}{_ref_text(reference)}"
        # 409: a scan of this artifact is already running -- waiting for it is what we want.
        self.request(f"scan {ref_text}", "POST",
                     f"{self._artifact_path(project, repository, reference)}/scan",
                     ok=(202, 409))
        deadline = time.monotonic() + timeout
        status = "Pending"
        while True:
            digest, report = self.scan_overview(project, repository, reference)
            status = str((report or {}).get("scan_status") or "Pending")
            if status not in SCAN_RUNNING:
                break
            if time.monotonic() >= deadline:
                raise RegistryError(f"Harbor scan {ref_text}: not finished after "
                                    f"{timeout:.0f}s (status {status})")
            sleep(interval)
        if report is None or status != "Success":
            raise RegistryError(f"Harbor scan {ref_text}: scan ended with status {status}")
        return summarize(ref_text, digest, report)


def _ref_text(reference: str) -> str:
    return f"@{reference}" if ":" in reference else f":{reference}"


def summarize(ref_text: str, digest: str, report: Mapping[str, Any]) -> ScanSummary:
    summary = report.get("summary") or {}
    counts = {str(k): int(v) for k, v in (summary.get("summary") or {}).items()}
    scanner = report.get("scanner") or {}
    scanner_text = " ".join(str(scanner[k]) for k in ("name", "version") if scanner.get(k))
    return ScanSummary(reference=ref_text, digest=digest,
                       status=str(report.get("scan_status", "")),
                       severity=str(report.get("severity") or "None"), counts=counts,
                       total=int(summary.get("total") or 0),
                       fixable=int(summary.get("fixable") or 0), scanner=scanner_text)


def parse_reference(text: str, url: str) -> tuple[str, str, str]:
    """``[host/]project/repo[/more]:tag`` or ``...@sha256:...`` -> (project, repo, ref)."""
    host = urlsplit(url).netloc
    rest = text[len(host) + 1:] if host and text.startswith(host + "/") else text
    if "@" in rest:
        name, ref = rest.split("@", 1)
    else:
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon <= slash:
            raise UsageError(f"'{text}': expected PROJECT/REPOSITORY:TAG or "
                             f"PROJECT/REPOSITORY@sha256:DIGEST")
        name, ref = rest[:colon], rest[colon + 1:]
    project, _, repo = name.partition("/")
    if not project or not repo or not ref:
        raise UsageError(f"'{text}': expected PROJECT/REPOSITORY:TAG or "
                         f"PROJECT/REPOSITORY@sha256:DIGEST")
    return project, repo, ref
