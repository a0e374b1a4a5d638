"""Harbor operations lamina needs: project, robot, immutability, retention, scan."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote

from lamina import redact
from lamina.errors import RegistryError, UsageError
from lamina.harbor.scans import (
    SCAN_RUNNING,
    VULN_REPORT_TYPES,
    ScanSummary,
    reference_suffix,
    summarize,
)
from lamina.harbor.transport import HarborTransport, encode_repository, id_from_location

DEFAULT_ROBOT_ACCESS: tuple[tuple[str, str], ...] = (("repository", "push"),
                                                     ("repository", "pull"))
SCAN_ROBOT_ACCESS: tuple[tuple[str, str], ...] = (("artifact", "read"), ("scan", "create"))
# Daily at midnight; Harbor cron has a seconds field. Without a schedule a retention policy
# exists but never runs, which is not what "keep the latest N" means to anyone.
DEFAULT_RETENTION_CRON = "0 0 0 * * *"


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


class HarborClient(HarborTransport):
    """The operations; each is idempotent, so bootstrap can be rerun."""

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
        return ImmutableRule(id_from_location(resp), tag_pattern, "created")

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
            rid = id_from_location(resp)
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
            f"get artifact {project}/{repository}{reference_suffix(reference)}", "GET",
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
        ref_text = f"{project}/{repository}{reference_suffix(reference)}"
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
