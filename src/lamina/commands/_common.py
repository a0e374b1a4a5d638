"""Options and helpers shared by the commands that work on the image tree."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from lamina.errors import UsageError
from lamina.external import ExternalResolver
from lamina.plan import PlanEntry, make_plan
from lamina.platforms import SUPPORTED, Platform, parse_platform
from lamina.recipe import Recipe, load_recipe
from lamina.settings import Settings, project_dir, settings_for
from lamina.store import Store


def add_tree_options(parser: argparse.ArgumentParser, images: bool = True) -> None:
    if images:
        parser.add_argument("images", nargs="*", metavar="IMAGE",
                            help="images to act on (with their ancestors); default: all")
    parser.add_argument("--platform", action="append", metavar="OS/ARCH", default=None,
                        help="only this platform (repeatable); default: the recipe's platforms")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="local OCI layout store (env LAMINA_STORE; default .lamina/store)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="nodes built in parallel (env LAMINA_JOBS; default 2)")
    parser.add_argument("--ca-bundle", metavar="FILE", default=None,
                        help="site CA bundle mounted into every RUN step as a build secret, "
                             "never written into a layer (env LAMINA_CA_BUNDLE)")
    parser.add_argument("--source-date-epoch", type=int, default=None, metavar="SECONDS",
                        help="timestamp for image and file times (env "
                             "LAMINA_SOURCE_DATE_EPOCH or SOURCE_DATE_EPOCH)")
    parser.add_argument("--builder", choices=["buildah", "docker"], default=None,
                        help="build backend (env LAMINA_BUILDER; default buildah)")


def load(args: argparse.Namespace) -> tuple[Recipe, Settings]:
    recipe = load_recipe(project_dir(getattr(args, "project", None)))
    settings = settings_for(
        recipe,
        store=getattr(args, "store", None),
        jobs=getattr(args, "jobs", None),
        ca_bundle=getattr(args, "ca_bundle", None),
        epoch=getattr(args, "source_date_epoch", None),
        builder=getattr(args, "builder", None),
    )
    return recipe, settings


def plan_for(args: argparse.Namespace, images: list[str] | None = None,
             platforms: list[Platform] | None = None
             ) -> tuple[Recipe, Settings, Store, list[PlanEntry]]:
    """Load the tree and plan it for the images and platforms the command line names."""
    recipe, settings = load(args)
    store = Store(settings.store)
    wanted = images if images is not None else (getattr(args, "images", None) or None)
    entries = make_plan(recipe, store, settings.epoch, wanted,
                        platforms if platforms is not None else platforms_arg(args),
                        ExternalResolver(settings.cache))
    return recipe, settings, store, entries


def platforms_arg(args: argparse.Namespace) -> list[Platform] | None:
    raw = getattr(args, "platform", None)
    if not raw:
        return None
    out = []
    for item in raw:
        for text in item.split(","):
            if text not in SUPPORTED:
                raise UsageError(f"unknown platform '{text}' (expected one of: "
                                 f"{', '.join(SUPPORTED)})")
            out.append(parse_platform(text))
    return out


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # rich would exit 1 silently; lamina.cli reports a closed pipe in one line (exit 141)
        raise BrokenPipeError


def console() -> Console:
    # CI logs are not terminals: give tables room instead of rich's 80-column default.
    probe = Console()
    width = None if probe.is_terminal else 200
    return _Console(highlight=False, soft_wrap=False, width=width)
