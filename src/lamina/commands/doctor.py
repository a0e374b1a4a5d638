"""``lamina doctor``: what this machine lacks for this tree, and how to fix it."""

from __future__ import annotations

import argparse

from rich.table import Table

from lamina.commands import COMMANDS
from lamina.commands._common import console, load, print_json
from lamina.doctor import run_checks


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help=COMMANDS["doctor"])
    parser.add_argument("--store", default=None, help="local store to check")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    checks = run_checks(recipe, settings.store)
    if args.json:
        print_json([{"check": c.name, "ok": c.ok, "detail": c.detail, "fix": c.fix}
                    for c in checks])
    else:
        table = Table(title="lamina doctor", title_justify="left")
        for column in ("check", "status", "detail", "how to fix"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]missing[/]", c.detail,
                          c.fix)
        console().print(table)
    return 0 if all(c.ok for c in checks) else 1
