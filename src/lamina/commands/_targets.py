"""Registry target options shared by ``publish``, ``build --push`` and ``plan --against``.

What a target needs (credentials, the registry client, rich for the table) is imported by the
functions that use it: ``lamina plan`` registers these options but contacts no registry
unless ``--against`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from lamina.commands._common import console, print_json
from lamina.errors import UsageError
from lamina.settings import resolve

if TYPE_CHECKING:
    from lamina.publish import ImagePublication
    from lamina.recipe import Recipe
    from lamina.target import Target


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cert-dir", default=None,
                        help="directory with the registry's ca.crt (custom CA; env "
                             "LAMINA_CERT_DIR)")
    parser.add_argument("--authfile", default=None,
                        help="containers auth file with the registry credentials")
    parser.add_argument("--insecure-loopback", action="store_true",
                        help="plain HTTP or unverified TLS, allowed for 127.0.0.1 only")


def targets_from(args: argparse.Namespace, recipe: Recipe, raw: list[str] | None) -> list[Target]:
    """``--to``/``--against`` values, or the recipe's ``targets`` when none is given, each
    with the credential store of this command (environment credentials bound to these
    targets' registry, :mod:`lamina.credentials`)."""
    from lamina.credentials import CredentialStore
    from lamina.target import Target

    # The environment form lets CI jobs (generated with a fixed command line) trust a
    # registry's private CA through a CI/CD variable.
    cert_raw = resolve(args.cert_dir, "LAMINA_CERT_DIR", None, None)
    cert_dir = Path(cert_raw) if cert_raw else None
    authfile = Path(args.authfile) if args.authfile else None
    if raw:
        targets = [Target.parse(t, cert_dir, args.insecure_loopback) for t in raw]
    else:
        targets = []
        for index, entry in enumerate(recipe.settings.get("targets") or []):
            try:
                targets.append(Target.parse(f"{entry['registry']}/{entry['namespace']}",
                                            cert_dir, args.insecure_loopback))
            except UsageError as exc:
                raise recipe.doc.error(("targets", index, "registry"), exc.message) from None
    if not targets:
        raise UsageError("no target: pass --to REGISTRY/NAMESPACE or set targets in recipe.yaml")
    store = CredentialStore.load(targets=[t.registry for t in targets], authfile=authfile)
    return [dataclasses.replace(t, credentials=store) for t in targets]


def release_annotations(root: Path, version: str, epoch: int) -> dict[str, str]:
    """OCI annotations of a release: version, created (the build's timestamp, so a rerun
    gives the same manifests), source and revision (CI variables or git)."""
    from lamina.publish import source_url

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    source = source_url(os.environ.get("CI_PROJECT_URL")
                        or git("config", "--get", "remote.origin.url"))
    revision = os.environ.get("CI_COMMIT_SHA") or git("rev-parse", "HEAD")
    created = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {"org.opencontainers.image.version": version,
           "org.opencontainers.image.created": created}
    if source:
        out["org.opencontainers.image.source"] = source
    if revision:
        out["org.opencontainers.image.revision"] = revision
    return out


def print_publications(results: list[tuple[str, ImagePublication | None, str]],
                       as_json: bool) -> None:
    from rich.table import Table

    if as_json:
        print_json(publications_json(results))
        return
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
    retries = sum(pub.retries for _, pub, _ in results if pub)
    sent = sum(pub.bytes_uploaded for _, pub, _ in results if pub)
    console().print(f"uploaded {sent} bytes; {retries} request(s) retried after transient "
                    "registry errors")


def publications_json(results: list[tuple[str, ImagePublication | None, str]]
                      ) -> list[dict[str, object]]:
    return [{"registry": reg, "error": err, **({
        "image": pub.image, "index_digest": pub.index_digest, "platforms": pub.platforms,
        "size": pub.size, "bytes_uploaded": pub.bytes_uploaded, "retries": pub.retries,
        "tags": [{"reference": t.reference, "digest": t.digest, "uploaded": t.uploaded}
                 for t in pub.tags]} if pub else {})} for reg, pub, err in results]
