"""``lamina test``: run images' own tests and their ancestors' inside the built images."""

from __future__ import annotations

import argparse

from rich.table import Table

from lamina.build import log_path
from lamina.builders import get_builder
from lamina.commands import COMMANDS
from lamina.commands._common import add_tree_options, console, plan_for, print_json
from lamina.errors import UsageError
from lamina.imagetest import run_tests
from lamina.plan import TEST, UP_TO_DATE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("test", help=COMMANDS["test"])
    add_tree_options(parser)
    parser.add_argument("--builder", choices=["buildah", "docker"], default=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings, store, entries = plan_for(args)
    builder = get_builder(settings.builder)
    table = Table(title="lamina test", title_justify="left")
    for column in ("image", "platform", "test", "from", "result", "time", "output"):
        table.add_column(column, overflow="fold")
    rows = []
    all_passed = True
    tested = 0
    for entry in entries:
        if entry.unit is None or entry.status not in (UP_TO_DATE, TEST):
            if args.images and entry.image in args.images and entry.status == "build":
                raise UsageError(f"{entry.image} on {entry.platform} is not built for its "
                                 f"current inputs ({entry.reason}); run lamina build first")
            continue
        tested += 1
        log = log_path(settings, entry.unit)
        for result in run_tests(recipe, entry.unit, builder, store, log,
                                settings.state / "work"):
            all_passed &= result.passed
            rows.append({"image": entry.image, "platform": entry.platform.name,
                         **result.as_json()})
            table.add_row(entry.image, entry.platform.name, result.spec.name,
                          result.spec.origin,
                          "[green]passed[/]" if result.passed else "[bold red]failed[/]",
                          f"{result.seconds:.1f}s", result.output_tail)
    if args.json:
        print_json(rows)
    else:
        console().print(table)
        console().print(f"{len(rows)} tests on {tested} nodes; "
                        f"{sum(1 for r in rows if not r['passed'])} failed")
    return 0 if all_passed else 1
