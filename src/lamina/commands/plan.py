"""``lamina plan``: what a build would do, and why, before doing anything."""

from __future__ import annotations

import argparse

from lamina.commands import COMMANDS
from lamina.commands._common import add_tree_options, console, plan_for, print_json
from lamina.commands._targets import add_target_options, targets_from


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan", help=COMMANDS["plan"])
    add_tree_options(parser)
    parser.add_argument("--source-date-epoch", type=int, default=None, metavar="SECONDS",
                        help="timestamp the build would use (it is part of the key)")
    parser.add_argument("--against", metavar="REGISTRY/NAMESPACE", default=None,
                        help="also count as up to date what this registry already holds for "
                             "the same key (one request per node, in parallel)")
    add_target_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings, _, entries = plan_for(args)
    requests_made = 0
    if args.against:
        from lamina.against import check_against

        target = targets_from(args, recipe, [args.against])[0]
        entries, requests_made = check_against(recipe, entries, target,
                                               max(4, settings.jobs * 4))
    if args.json:
        print_json([e.as_json() for e in entries])
        return 0
    from rich.table import Table

    from lamina.progress import OUTCOME_STYLE

    status_style = {**OUTCOME_STYLE, "build": "bold yellow", "test": "yellow",
                    "blocked": "red"}
    table = Table(title=f"lamina plan ({recipe.root.name})", title_justify="left")
    for column in ("image", "platform", "status", "key", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        style = status_style.get(entry.status, "")
        key = (entry.key or "")[7:19]
        table.add_row(entry.image, entry.platform.name, f"[{style}]{entry.status}[/]", key,
                      entry.reason)
    console().print(table)
    todo = sum(1 for e in entries if e.status in ("build", "test"))
    console().print(f"{todo} of {len(entries)} nodes to build or test")
    if args.against:
        held = sum(1 for e in entries if e.remote)
        console().print(f"{args.against} holds {held} of {len(entries)} nodes "
                        f"({requests_made} HTTP requests)")
    return 0
