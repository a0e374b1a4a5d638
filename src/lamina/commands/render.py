"""``lamina render``: the exact Containerfile a node is built from. Nothing is hidden."""

from __future__ import annotations

import argparse
import sys

from lamina.commands import COMMANDS
from lamina.commands._common import load, platforms_arg
from lamina.external import ExternalResolver
from lamina.plan import make_plan
from lamina.platforms import host_platform
from lamina.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("render", help=COMMANDS["render"])
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("--platform", action="append", default=None, metavar="OS/ARCH",
                        help="platform to render for (default: the host's, if declared)")
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    image = recipe.image(args.image)
    wanted = platforms_arg(args)
    if wanted:
        platform = wanted[0]
    else:
        platform = host_platform() if host_platform() in image.platforms else image.platforms[0]
    entries = make_plan(recipe, Store(settings.store), settings.epoch, [args.image], [platform],
                        ExternalResolver(settings.cache))
    entry = next(e for e in entries if e.image == args.image)
    if entry.unit is None:
        sys.stderr.write(f"lamina: {args.image} is {entry.status} on {platform}: "
                         f"{entry.reason}\n")
        return 1
    sys.stdout.write(entry.unit.containerfile())
    return 0
