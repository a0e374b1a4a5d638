"""``lamina publish``: push tested images as per-arch tags plus a multi-arch index."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
from pathlib import Path

from rich.table import Table

from lamina.commands._common import add_tree_options, console, load, platforms_arg, print_json
from lamina.errors import UsageError
from lamina.external import ExternalResolver
from lamina.plan import make_plan
from lamina.publish import ImagePublication, PublishError, Target, publish_image, release_tags
from lamina.registry_auth import authfile_for
from lamina.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "publish", help="push tested images: per-arch <tag>-<arch> tags, then the index <tag>")
    add_tree_options(parser)
    parser.add_argument("--to", metavar="REGISTRY/NAMESPACE", action="append", default=None,
                        help="target (repeatable); default: the recipe's targets")
    parser.add_argument("--tag", default=None,
                        help="release version (default: CI_COMMIT_TAG or the commit's git tag)")
    parser.add_argument("--cert-dir", default=None,
                        help="directory with the registry's ca.crt (custom CA)")
    parser.add_argument("--authfile", default=None,
                        help="containers auth file with the registry credentials")
    parser.add_argument("--insecure-loopback", action="store_true",
                        help="plain HTTP or unverified TLS, allowed for 127.0.0.1 only")
    parser.set_defaults(handler=run)


def _annotations(root: Path, version: str, epoch: int) -> dict[str, str]:
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    source = os.environ.get("CI_PROJECT_URL") or git("config", "--get", "remote.origin.url")
    revision = os.environ.get("CI_COMMIT_SHA") or git("rev-parse", "HEAD")
    created = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {"org.opencontainers.image.version": version,
           "org.opencontainers.image.created": created}
    if source and "@" not in source.split("//")[-1].split("/")[0]:  # never a URL with creds
        out["org.opencontainers.image.source"] = source
    if revision:
        out["org.opencontainers.image.revision"] = revision
    return out


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    store = Store(settings.store)
    cert_dir = Path(args.cert_dir) if args.cert_dir else None
    authfile = Path(args.authfile) if args.authfile else None
    raw_targets = args.to or [f"{t['registry']}/{t['namespace']}"
                              for t in recipe.settings.get("targets") or []]
    if not raw_targets:
        raise UsageError("no target: pass --to REGISTRY/NAMESPACE or set targets in recipe.yaml")
    targets = [Target.parse(t, cert_dir, authfile, args.insecure_loopback) for t in raw_targets]
    tags = release_tags(args.tag, recipe)
    entries = make_plan(recipe, store, settings.epoch, args.images or None, platforms_arg(args),
                        ExternalResolver(settings.cache))
    # Named images only (their parents are checked by the plan, not published with them).
    names = [n for n in recipe.select(args.images or None)
             if recipe.images[n].publish and (not args.images or n in args.images)]
    annotations = _annotations(recipe.root, tags[0], settings.epoch)
    results: list[tuple[str, ImagePublication | None, str]] = []
    for target in targets:
        with authfile_for(target.registry, target.authfile) as auth:
            with_auth = dataclasses.replace(target, authfile=auth)
            for name in names:
                try:
                    results.append((target.registry,
                                    publish_image(recipe, store, name, entries, with_auth, tags,
                                                  annotations), ""))
                except PublishError as exc:
                    results.append((target.registry, None, f"{name}: {exc}"))
    if args.json:
        print_json([{"registry": reg, "error": err, **({
            "image": pub.image, "index_digest": pub.index_digest, "platforms": pub.platforms,
            "size": pub.size,
            "tags": [{"reference": t.reference, "digest": t.digest, "uploaded": t.uploaded}
                     for t in pub.tags]} if pub else {})} for reg, pub, err in results])
    else:
        table = Table(title="lamina publish", title_justify="left")
        for column in ("reference", "digest", "pushed"):
            table.add_column(column, overflow="fold")
        for _, pub, err in results:
            if pub is None:
                table.add_row(f"[bold red]{err}[/]", "", "")
                continue
            for tag in pub.tags:
                table.add_row(tag.reference, tag.digest[:19], "yes" if tag.uploaded else
                              "already there")
        console().print(table)
    return 0 if all(pub is not None for _, pub, _ in results) else 1
