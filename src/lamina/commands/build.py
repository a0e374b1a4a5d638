"""``lamina build``: build (and by default test) what the plan says, into the local store.

With ``--push`` the plan is first checked against the target registry: what it already
holds for the same key is neither built nor uploaded (fetched only when a child builds on it
or it is being released), and what was built is pushed under its key tag, plus the release
tags and index when a release version is known (``--tag``, CI_COMMIT_TAG, or the git tag).
"""

from __future__ import annotations

import argparse
from typing import Any

from lamina.against import check_against, fetch_into_store, needed_locally
from lamina.build import BuildRun, NodeResult
from lamina.builders import get_builder
from lamina.commands import COMMANDS
from lamina.commands._common import (
    add_build_options,
    add_tree_options,
    console,
    plan_for,
    print_json,
)
from lamina.commands._targets import (
    add_target_options,
    print_publications,
    publications_json,
    targets_from,
)
from lamina.commands.publish import publish_all
from lamina.errors import ToolError, UsageError
from lamina.external import ExternalResolver
from lamina.plan import UP_TO_DATE, PlanEntry, make_plan
from lamina.progress import Progress
from lamina.publish import ImagePublication, push_key_tag, release_tags
from lamina.recipe import Recipe
from lamina.store import Store
from lamina.summary import print_summary, top_layer_share
from lamina.target import Target, client_for, skopeo_auth


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build", help=COMMANDS["build"])
    add_tree_options(parser)
    add_build_options(parser)
    parser.add_argument("--no-test", action="store_true",
                        help="do not run image tests after building")
    parser.add_argument("--push", action="store_true",
                        help="skip what the target registry already holds for the same key, "
                             "then push what was built (and release it when a tag is known)")
    parser.add_argument("--to", metavar="REGISTRY/NAMESPACE", action="append", default=None,
                        help="with --push: target (repeatable; the first is checked); "
                             "default: the recipe's targets")
    parser.add_argument("--tag", default=None,
                        help="with --push: release version (default: CI_COMMIT_TAG or the "
                             "commit's git tag; without one only key tags are pushed)")
    add_target_options(parser)
    parser.set_defaults(handler=run)


def _release_version(args: argparse.Namespace, recipe: Recipe) -> list[str] | None:
    try:
        return release_tags(args.tag, recipe)
    except UsageError:
        if args.tag:
            raise
        return None


def run(args: argparse.Namespace) -> int:
    if (args.to or args.tag) and not args.push:
        raise UsageError("--to and --tag need --push (or use lamina publish)")
    recipe, settings, store, entries = plan_for(args)
    targets = targets_from(args, recipe, args.to) if args.push else []
    names = [n for n in recipe.select(args.images or None)
             if recipe.images[n].publish and (not args.images or n in args.images)]
    tags = _release_version(args, recipe) if args.push else None
    if targets:
        with skopeo_auth(targets[0]) as checked:
            entries, _ = check_against(recipe, entries, checked, max(4, settings.jobs * 4))
            for entry in needed_locally(recipe, entries, set(names) if tags else set()):
                fetch_into_store(recipe, store, entry, checked)
    work = [e for e in entries if e.status in ("build", "test")]
    builder = get_builder(settings.builder)
    if work:
        problems = builder.check()
        if problems:
            raise ToolError("; ".join(problems))
    progress = Progress(quiet=args.json)
    results = BuildRun(recipe, settings, store, builder, progress,
                       run_image_tests=not args.no_test).run(entries)
    ok = all(r.ok for r in results)
    published: list[tuple[str, ImagePublication | None, str]] = []
    pushed: list[str] = []
    if targets and ok:
        fresh = make_plan(recipe, store, settings.epoch, args.images or None,
                          [e.platform for e in entries if e.unit] or None,
                          ExternalResolver(settings.cache))
        if tags:
            published = publish_all(recipe, settings, store, fresh, targets, names, tags)
        else:
            pushed = _push_key_tags(recipe, store, entries, fresh, targets)
    if args.json:
        nodes = [_node_json(r) for r in results]
        if targets:
            print_json({"nodes": nodes, "published": publications_json(published),
                        "key_tags": pushed})
        else:
            print_json(nodes)
    else:
        print_summary(results, f"lamina build ({settings.store})", console())
        if published:
            print_publications(published, False)
        for reference in pushed:
            console().print(f"pushed {reference}")
    return 0 if ok and all(pub is not None for _, pub, _ in published) else 1


def _push_key_tags(recipe: Recipe, store: Store, checked: list[PlanEntry],
                   fresh: list[PlanEntry], targets: list[Target]) -> list[str]:
    """Key tags for every tested node the checked registry did not hold yet."""
    held = {(e.image, e.platform) for e in checked if e.remote}
    out: list[str] = []
    for target in targets:
        with skopeo_auth(target) as with_auth:
            client = client_for(with_auth)
            for entry in fresh:
                if entry.status == UP_TO_DATE and (entry.image, entry.platform) not in held:
                    parent = recipe.images[entry.image].parent_name
                    out.append(push_key_tag(store, entry, with_auth, client=client,
                                            mount_from=with_auth.repository(parent)
                                            if parent else None))
    return out


def _node_json(r: NodeResult) -> dict[str, Any]:
    return {**r.entry.as_json(), "outcome": r.outcome, "error": r.error,
            "warnings": r.warnings,
            "log": str(r.log) if r.log else None, "seconds": round(r.seconds, 1),
            "size": r.size, "layer_sizes": [[n, s] for n, s in r.layer_sizes],
            "top_layer_share": round(top_layer_share(r), 4),
            "tests": [t.as_json() for t in r.tests], "phases": dict(r.phases)}
