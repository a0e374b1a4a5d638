"""``lamina harbor``: bootstrap a Harbor project for publishing, and scan published images.

Credentials come from ``LAMINA_HARBOR_USERNAME`` / ``LAMINA_HARBOR_PASSWORD`` only (never
from the command line, where they would land in shell history and process lists); a robot
name such as ``robot$hep+ci`` is used verbatim. The Harbor address is ``--url`` or
``LAMINA_HARBOR_URL``.

A new robot secret is shown by Harbor exactly once. ``bootstrap`` writes it to
``--robot-secret-file`` (created 0600) when given; otherwise it prints it once on stdout,
after the table, with a warning on stderr -- never in a log line or an error message.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from rich.table import Table

from lamina.commands import COMMANDS
from lamina.commands._common import console, print_json
from lamina.errors import UsageError
from lamina.harbor import (
    DEFAULT_RETENTION_CRON,
    DEFAULT_ROBOT_ACCESS,
    SCAN_ROBOT_ACCESS,
    SEVERITIES,
    HarborClient,
    Robot,
    ScanSummary,
    parse_reference,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "harbor", help=COMMANDS["harbor"],
        description="Talk to a Harbor registry's REST API v2.0. Credentials: "
                    "LAMINA_HARBOR_USERNAME and LAMINA_HARBOR_PASSWORD.")
    sub = parser.add_subparsers(dest="harbor_command", metavar="ACTION", required=True)

    boot = sub.add_parser("bootstrap", help="ensure project, robot account, immutable tags, "
                                            "retention (idempotent)")
    _connection(boot)
    boot.add_argument("--project", required=True, help="Harbor project to create or adjust")
    boot.add_argument("--public", action="store_true", help="make the project public")
    boot.add_argument("--auto-scan", action="store_true", help="scan images on push")
    boot.add_argument("--robot", metavar="NAME", default=None,
                      help="create project robot account robot$<project>+NAME (push, pull)")
    boot.add_argument("--robot-days", type=int, default=-1, metavar="DAYS",
                      help="robot lifetime in days (default -1: never expires)")
    boot.add_argument("--robot-scan", action="store_true",
                      help="also let the robot read artifacts and trigger scans")
    boot.add_argument("--robot-secret-file", metavar="FILE", default=None,
                      help="write the robot secret here (mode 0600) instead of stdout")
    boot.add_argument("--refresh-robot-secret", action="store_true",
                      help="if the robot exists, issue a new secret (the old one stops working)")
    boot.add_argument("--immutable", metavar="PATTERN", action="append", default=None,
                      help="make tags matching PATTERN immutable, e.g. 'v*' (repeatable)")
    boot.add_argument("--keep", type=int, metavar="N", default=None,
                      help="retention: keep the N most recently pushed matching tags")
    boot.add_argument("--keep-pattern", metavar="PATTERN", default="**",
                      help="tags the retention rule applies to (default **)")
    boot.add_argument("--keep-schedule", metavar="CRON", default=DEFAULT_RETENTION_CRON,
                      help=f"retention schedule for a new policy, Harbor 6-field cron "
                           f"(default '{DEFAULT_RETENTION_CRON}': daily)")
    boot.set_defaults(handler=run_bootstrap)

    scan = sub.add_parser("scan", help="scan PROJECT/REPOSITORY:TAG and print the summary")
    _connection(scan)
    scan.add_argument("reference", metavar="PROJECT/REPOSITORY:TAG",
                      help="image to scan (tag or @sha256:digest; a leading host is allowed)")
    scan.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                      help="give up waiting for the scan after this long (default 600)")
    scan.add_argument("--interval", type=float, default=5.0, metavar="SECONDS",
                      help="poll interval (default 5)")
    scan.add_argument("--fail-on", choices=SEVERITIES[:-1], default=None,
                      help="exit 1 if there is a vulnerability of this severity or worse")
    scan.set_defaults(handler=run_scan)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None,
                        help="Harbor address, e.g. https://harbor.example.org "
                             "(env LAMINA_HARBOR_URL)")
    parser.add_argument("--ca-bundle", metavar="FILE", default=None,
                        help="CA bundle to verify Harbor's TLS certificate")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def client_from(args: argparse.Namespace) -> HarborClient:
    url = args.url or os.environ.get("LAMINA_HARBOR_URL")
    if not url:
        raise UsageError("no Harbor address: pass --url or set LAMINA_HARBOR_URL")
    if args.ca_bundle and not Path(args.ca_bundle).is_file():
        raise UsageError(f"--ca-bundle {args.ca_bundle}: no such file")
    return HarborClient(url, os.environ.get("LAMINA_HARBOR_USERNAME", ""),
                        os.environ.get("LAMINA_HARBOR_PASSWORD", ""),
                        verify=args.ca_bundle or True)


def _write_secret(path: Path, secret: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode otherwise
        os.write(fd, (secret + "\n").encode())
    finally:
        os.close(fd)


def run_bootstrap(args: argparse.Namespace) -> int:
    if args.robot_secret_file and not args.robot:
        raise UsageError("--robot-secret-file needs --robot NAME")
    if args.robot_secret_file and not Path(args.robot_secret_file).parent.is_dir():
        # checked before the robot exists: a secret Harbor showed once must have a home
        raise UsageError(f"--robot-secret-file {args.robot_secret_file}: directory does not "
                         f"exist")
    client = client_from(args)
    rows: list[tuple[str, str, str]] = []
    project = client.ensure_project(args.project, public=args.public,
                                    metadata={"auto_scan": True} if args.auto_scan else None)
    visibility = "public" if project.public else "private"
    rows.append(("project", f"{project.name} ({visibility}, id {project.id})", project.action))
    for pattern in args.immutable or []:
        rule = client.set_immutable_rule(args.project, pattern)
        rows.append(("immutable tags", pattern, rule.action))
    if args.keep is not None:
        ret = client.set_retention(args.project, args.keep, args.keep_pattern,
                                   args.keep_schedule)
        rows.append(("retention", f"keep latest {ret.keep_latest} of {ret.pattern}",
                     ret.action))
    # The robot comes last: its secret is shown only once, so no later step may fail and
    # take it with it.
    robot: Robot | None = None
    if args.robot:
        access = DEFAULT_ROBOT_ACCESS + (SCAN_ROBOT_ACCESS if args.robot_scan else ())
        robot = client.create_robot(args.project, args.robot, args.robot_days, access,
                                    refresh_if_exists=args.refresh_robot_secret)
        rows.append(("robot", robot.name, robot.action))
    if robot and args.robot_secret_file:
        _write_secret(Path(args.robot_secret_file), robot.secret)
    if args.json:
        data: dict[str, object] = {"url": client.base_url, "project": args.project,
                                   "steps": [{"what": w, "name": n, "result": r}
                                             for w, n, r in rows]}
        if robot:
            entry: dict[str, object] = {"name": robot.name, "expires_at": robot.expires_at,
                                        "secret_file": args.robot_secret_file}
            if not args.robot_secret_file:
                entry["secret"] = robot.secret
            data["robot"] = entry
        print_json(data)
    else:
        table = Table(title=f"Harbor {client.base_url}", title_justify="left")
        for column in ("what", "name", "result"):
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console().print(table)
        if robot and args.robot_secret_file:
            print(f"robot secret written to {args.robot_secret_file} (mode 0600)")
        elif robot:
            print(f"robot secret: {robot.secret}")
    if robot and not args.robot_secret_file:
        print("lamina: warning: Harbor shows a robot secret only once; store it now (e.g. as "
              "a masked CI variable) or use --robot-secret-file next time", file=sys.stderr)
    return 0


def _summary_json(summary: ScanSummary) -> dict[str, object]:
    return dataclasses.asdict(summary)


def run_scan(args: argparse.Namespace) -> int:
    client = client_from(args)
    project, repository, reference = parse_reference(args.reference, client.base_url)
    summary = client.scan(project, repository, reference, timeout=args.timeout,
                          interval=args.interval)
    if args.json:
        print_json(_summary_json(summary))
    else:
        table = Table(title=f"scan of {summary.reference}", title_justify="left")
        for column in ("status", "severity", *SEVERITIES[:-1], "total", "fixable", "scanner"):
            table.add_column(column)
        table.add_row(summary.status, summary.severity,
                      *(str(summary.counts.get(s, 0)) for s in SEVERITIES[:-1]),
                      str(summary.total), str(summary.fixable), summary.scanner)
        console().print(table)
    if args.fail_on and summary.at_least(args.fail_on):
        print(f"lamina: error: {summary.at_least(args.fail_on)} vulnerabilities of severity "
              f"{args.fail_on} or worse in {summary.reference}", file=sys.stderr)
        return 1
    return 0
