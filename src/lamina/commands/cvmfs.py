"""``lamina cvmfs``: the unpacked.cern.ch wishlist lines for published images, and the merge
request on the sync repository that adds them.

Every command module is imported to build ``lamina --help``, so the wishlist reader and the
GitLab client are imported inside the handlers, not here."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamina.commands import COMMANDS
from lamina.commands._common import console, load, print_json
from lamina.cvmfs.config import CvmfsConfig, cvmfs_config
from lamina.errors import UsageError
from lamina.recipe import Recipe
from lamina.store import Store

if TYPE_CHECKING:
    from lamina.cvmfs.entries import PlannedEntry
    from lamina.cvmfs.mr_text import ImageSummary
    from lamina.cvmfs.wishlist import WishlistEdit


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "cvmfs", help=COMMANDS["cvmfs"])
    sub = parser.add_subparsers(dest="cvmfs_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("images", nargs="*", metavar="IMAGE",
                       help="published images (default: cvmfs.images, else all published)")
        p.add_argument("--store", metavar="DIR", default=None,
                       help="local store holding the publication records (env LAMINA_STORE)")

    entries = sub.add_parser("entries", help="wishlist lines and /cvmfs paths of published "
                                             "images (multi-arch tag and <tag>-<arch>)")
    common(entries)
    entries.add_argument("--json", action="store_true", help="machine-readable output")
    entries.set_defaults(handler=run_entries)

    mr = sub.add_parser(
        "mr", help="open or update the merge request adding the images to the wishlist",
        description="Token: LAMINA_GITLAB_TOKEN (personal/project access token, api scope). "
                    "CI_JOB_TOKEN cannot open merge requests on another project.")
    common(mr)
    mr.add_argument("--dry-run", action="store_true",
                    help="print the unified diff of the wishlist only; write nothing")
    mr.add_argument("--wishlist", metavar="FILE", default=None,
                    help="with --dry-run: read this local wishlist instead of fetching it")
    mr.add_argument("--gitlab-url", default=None,
                    help="GitLab base URL (env LAMINA_GITLAB_URL; default https://gitlab.cern.ch)")
    mr.add_argument("--project", dest="sync_project", default=None, metavar="PATH",
                    help="sync project (env LAMINA_CVMFS_PROJECT; default unpacked/sync)")
    mr.add_argument("--branch", default=None,
                    help="target branch (env LAMINA_CVMFS_BRANCH; default master; upstream "
                         "also has multiarch)")
    mr.add_argument("--fork", default=None, metavar="PATH",
                    help="push the branch to this fork of the sync project (env "
                         "LAMINA_CVMFS_FORK)")
    mr.add_argument("--json", action="store_true", help="machine-readable output")
    mr.set_defaults(handler=run_mr)
    parser.set_defaults(handler=lambda _args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _config(recipe: Recipe, args: argparse.Namespace) -> CvmfsConfig:
    return cvmfs_config(recipe.settings.get("cvmfs"),
                        gitlab_url=getattr(args, "gitlab_url", None),
                        project=getattr(args, "sync_project", None),
                        branch=getattr(args, "branch", None),
                        fork=getattr(args, "fork", None))


def _published(recipe: Recipe, store: Store, cfg: CvmfsConfig, wanted: list[str]
               ) -> list[tuple[str, dict[str, Any]]]:
    """(image, publications) in tree order, for the named images or the configured ones."""
    for name in wanted:
        if name not in recipe.images:
            raise UsageError(f"unknown image '{name}' (known: {', '.join(recipe.order)})")
    names = wanted or list(cfg.images or [])
    for name in names:
        if name not in recipe.images:
            raise UsageError(f"cvmfs.images names unknown image '{name}'")
    out = []
    for name in recipe.order:
        if names and name not in names:
            continue
        pubs = store.read_publications(name)
        if pubs:
            out.append((name, pubs))
        elif names:
            raise UsageError(f"{name} has not been published from this store (run lamina "
                             "publish first)")
    if not out:
        raise UsageError("no published images in this store (run lamina publish first)")
    return out


def _plan(args: argparse.Namespace) -> tuple[Recipe, CvmfsConfig, list[str],
                                             list[PlannedEntry], list[ImageSummary]]:
    from lamina.cvmfs.entries import planned_entries
    from lamina.cvmfs.mr_text import ImageSummary

    recipe, settings = load(args)
    cfg = _config(recipe, args)
    published = _published(recipe, Store(settings.store), cfg, list(args.images or []))
    planned: list[PlannedEntry] = []
    summaries: list[ImageSummary] = []
    for image, pubs in published:
        planned += planned_entries(image, pubs)
        summaries += [ImageSummary.from_publication(image, repo, pubs[repo])
                      for repo in sorted(pubs)]
    return recipe, cfg, [image for image, _ in published], planned, summaries


def run_entries(args: argparse.Namespace) -> int:
    from rich.table import Table

    from lamina.cvmfs.entries import host_notes

    _, _, _, planned, _ = _plan(args)
    for note in host_notes(planned):
        print(f"# note: {note}", file=sys.stderr)
    if args.json:
        print_json([p.as_json() for p in planned])
        return 0
    table = Table(title="unpacked.cern.ch wishlist entries", title_justify="left")
    for column in ("image", "wishlist line", "path on CVMFS", "digest"):
        table.add_column(column, overflow="fold")
    for p in planned:
        table.add_row(p.image, p.url, p.path, p.digest[:19])
    console().print(table)
    return 0


def _report_json(edit: WishlistEdit, planned: list[PlannedEntry]) -> dict[str, Any]:
    from lamina.cvmfs.entries import host_notes

    return {"broken": [{"line": b.line, "entry": b.text, "why": b.problem}
                       for b in edit.broken],
            "notes": [*host_notes(planned), *edit.notes]}


def _print_report(edit: WishlistEdit, planned: list[PlannedEntry], prefix: str) -> None:
    from lamina.cvmfs.entries import host_notes
    from lamina.cvmfs.mr_text import report_lines

    for line in report_lines(edit.broken, [*host_notes(planned), *edit.notes], markdown=False):
        print(f"{prefix}{line}", file=sys.stderr)


def run_mr(args: argparse.Namespace) -> int:
    import difflib

    from lamina.cvmfs.merge_request import (
        SyncRepository,
        read_wishlist,
        require_token,
        token_from_env,
    )
    from lamina.cvmfs.mr_text import branch_name
    from lamina.cvmfs.wishlist import add_entries

    if args.wishlist and not args.dry_run:
        raise UsageError("--wishlist FILE only works with --dry-run (the merge request edits "
                         "the file on GitLab)")
    recipe, cfg, images, planned, summaries = _plan(args)
    branch = branch_name(images, str(recipe.settings.get("name") or recipe.root.name))
    if args.dry_run:
        if args.wishlist:
            path = Path(args.wishlist)
            text, label = path.read_text(encoding="utf-8"), str(path)
        else:
            text = read_wishlist(cfg, token_from_env())
            label = f"{cfg.project}/{cfg.branch}/{cfg.file}"
        edit = add_entries(text, [p.url for p in planned], label)
        diff = difflib.unified_diff(text.splitlines(keepends=True),
                                    edit.text.splitlines(keepends=True),
                                    fromfile=f"a/{cfg.file}", tofile=f"b/{cfg.file}")
        out = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
        if args.json:
            print_json({"branch": branch, "added": edit.added,
                        "skipped": [{"url": u, "why": w} for u, w in edit.skipped],
                        "diff": out, **_report_json(edit, planned)})
        else:
            sys.stdout.write(out)
            for url, why in edit.skipped:
                print(f"# skipped {url}: {why}", file=sys.stderr)
            _print_report(edit, planned, "# ")
            if not edit.changed:
                print("# nothing to add: every entry is already on the wishlist",
                      file=sys.stderr)
        return 0
    repo = SyncRepository(cfg, require_token())
    result = repo.submit(branch, planned, summaries)
    if args.json:
        print_json({"action": result.action, "url": result.url, "iid": result.iid,
                    "commit": result.commit, "branch": branch, "source": result.source_project,
                    "added": result.edit.added,
                    "skipped": [{"url": u, "why": w} for u, w in result.edit.skipped],
                    "notes": result.notes,
                    "wishlist": _report_json(result.edit, planned)})
        return 0
    said = {"opened": f"opened merge request !{result.iid}: {result.url}",
            "updated": f"updated merge request !{result.iid}: {result.url}",
            "up-to-date": f"merge request !{result.iid} is up to date: {result.url}",
            "nothing-to-add": "nothing to add: every entry is already on the wishlist"}
    print(said[result.action])
    for url in result.edit.added:
        print(f"  + {url}")
    for url, why in result.edit.skipped:
        print(f"  = {url} ({why})")
    for note in result.notes:
        print(f"note: {note}")
    _print_report(result.edit, planned, "")
    return 0
