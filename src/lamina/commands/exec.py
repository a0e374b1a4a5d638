"""``lamina exec DIR CMD…``: run a command in an unpacked image, as ``apptainer exec`` does."""

from __future__ import annotations

import argparse
from pathlib import Path

from lamina.commands import COMMANDS
from lamina.commands._sandbox import add_options, run_options, split_late_options, warn


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exec", help=COMMANDS["exec"])
    add_options(parser)
    parser.add_argument("dir", metavar="DIR",
                        help="unpacked image: the public path or a .flat directory")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="[--] CMD [ARGS...]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from lamina.sandbox_exec import exec_in

    command = split_late_options(args, "lamina exec")
    return exec_in(Path(args.dir), command, run_options(args), warn=warn)
