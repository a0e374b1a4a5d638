"""``lamina run DIR [ARGS…]``: the image's runscript, as ``apptainer run`` runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from lamina.commands import COMMANDS
from lamina.commands._sandbox import add_options, run_options, split_late_options, warn


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run", help=COMMANDS["run"])
    add_options(parser)
    parser.add_argument("dir", metavar="DIR",
                        help="unpacked image: the public path or a .flat directory")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="[--] [ARGS...]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lamina.sandbox_exec import run_in

    arguments = split_late_options(args, "lamina run")
    return run_in(Path(args.dir), arguments, run_options(args), warn=warn)
