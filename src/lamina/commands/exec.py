"""``lamina exec DIR -- CMD``: run a command in an unpacked image, like ``singularity exec``."""

from __future__ import annotations

import argparse
from pathlib import Path

from lamina.errors import UsageError
from lamina.sandbox_exec import exec_in


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", metavar="SRC[:DST]", action="append", default=None,
                        help="bind a host path into the container (repeatable)")
    parser.add_argument("--cleanenv", action="store_true",
                        help="do not pass the host environment (only the image's ENV)")
    parser.add_argument("--pwd", default=None,
                        help="working directory inside (default: the image's WorkingDir)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="kill the command after SECONDS and exit 124 (default: none; the "
                             "command runs as long as it runs, as with singularity exec)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "exec", help="run a command in an unpacked image (bubblewrap; read-only root, image ENV)")
    _options(parser)
    parser.add_argument("dir", metavar="DIR",
                        help="unpacked image: the public path or a .flat directory")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if "--" in command and command.index("--") > 0:
        # options written after DIR (lamina exec DIR --bind X -- CMD)
        late = argparse.ArgumentParser(prog="lamina exec", add_help=False)
        _options(late)
        split = command.index("--")
        extra, unknown = late.parse_known_args(command[:split])
        if unknown:
            raise UsageError(f"unexpected arguments before '--': {' '.join(unknown)}")
        args.bind = (args.bind or []) + (extra.bind or [])
        args.cleanenv = args.cleanenv or extra.cleanenv
        args.pwd = extra.pwd or args.pwd
        args.timeout = extra.timeout if extra.timeout is not None else args.timeout
        command = command[split:]
    if command and command[0] == "--":
        command = command[1:]
    if args.timeout is not None and not 0 < args.timeout < 10**9:
        raise UsageError(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    return exec_in(Path(args.dir), command, binds=args.bind, clean_env=args.cleanenv,
                   workdir=args.pwd, timeout=args.timeout)
