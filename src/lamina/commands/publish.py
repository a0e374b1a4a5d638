"""``lamina publish``: push tested images as per-arch tags plus a multi-arch index."""

from __future__ import annotations

import argparse

from lamina.commands import COMMANDS
from lamina.commands._common import add_tree_options, load, platforms_arg
from lamina.commands._targets import (
    add_target_options,
    print_publications,
    release_annotations,
    targets_from,
)
from lamina.external import ExternalResolver
from lamina.plan import PlanEntry, make_plan
from lamina.publish import (
    ImagePublication,
    PublishError,
    publish_image,
    published_bases,
    release_tags,
)
from lamina.recipe import Recipe
from lamina.settings import Settings
from lamina.store import Store
from lamina.target import Target, skopeo_auth


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "publish", help=COMMANDS["publish"])
    add_tree_options(parser)
    parser.add_argument("--to", metavar="REGISTRY/NAMESPACE", action="append", default=None,
                        help="target (repeatable); default: the recipe's targets")
    parser.add_argument("--tag", default=None,
                        help="release version (default: CI_COMMIT_TAG or the commit's git tag)")
    add_target_options(parser)
    parser.set_defaults(handler=run)


def publish_all(recipe: Recipe, settings: Settings, store: Store, entries: list[PlanEntry],
                targets: list[Target], names: list[str], tags: list[str]
                ) -> list[tuple[str, ImagePublication | None, str]]:
    """Publish ``names`` (parents first) to every target; one result per image and target."""
    annotations = release_annotations(recipe.root, tags[0], settings.epoch)
    results: list[tuple[str, ImagePublication | None, str]] = []
    for target in targets:
        with skopeo_auth(target) as with_auth:
            bases = published_bases(store, recipe, with_auth)
            for name in names:  # parents first, so children name their published base
                try:
                    results.append((target.registry,
                                    publish_image(recipe, store, name, entries, with_auth, tags,
                                                  annotations, bases), ""))
                except PublishError as exc:
                    results.append((target.registry, None, f"{name}: {exc}"))
    return results


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    store = Store(settings.store)
    targets = targets_from(args, recipe, args.to)
    tags = release_tags(args.tag, recipe)
    entries = make_plan(recipe, store, settings.epoch, args.images or None, platforms_arg(args),
                        ExternalResolver(settings.cache))
    # Named images only (their parents are checked by the plan, not published with them).
    names = [n for n in recipe.select(args.images or None)
             if recipe.images[n].publish and (not args.images or n in args.images)]
    results = publish_all(recipe, settings, store, entries, targets, names, tags)
    print_publications(results, args.json)
    return 0 if all(pub is not None for _, pub, _ in results) else 1
