"""``lamina build``: build (and by default test) what the plan says, into the local store."""

from __future__ import annotations

import argparse

from lamina.build import BuildRun
from lamina.builders import get_builder
from lamina.commands._common import (
    add_build_options,
    add_tree_options,
    console,
    plan_for,
    print_json,
)
from lamina.errors import ToolError
from lamina.progress import Progress
from lamina.summary import print_summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "build", help="build and test what changed, parents first, into the local store")
    add_tree_options(parser)
    add_build_options(parser)
    parser.add_argument("--no-test", action="store_true",
                        help="do not run image tests after building")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings, store, entries = plan_for(args)
    work = [e for e in entries if e.status in ("build", "test")]
    builder = get_builder(settings.builder)
    if work:
        problems = builder.check()
        if problems:
            raise ToolError("; ".join(problems))
    progress = Progress(quiet=args.json)
    results = BuildRun(recipe, settings, store, builder, progress,
                       run_image_tests=not args.no_test).run(entries)
    if args.json:
        print_json([
            {**r.entry.as_json(), "outcome": r.outcome, "error": r.error,
             "log": str(r.log) if r.log else None, "seconds": round(r.seconds, 1),
             "size": r.size,
             "tests": [t.as_json() for t in r.tests]}
            for r in results
        ])
    else:
        print_summary(results, f"lamina build ({settings.store})", console())
    return 0 if all(r.ok for r in results) else 1
