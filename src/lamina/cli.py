"""The ``lamina`` command line.

Each subcommand lives in its own module under :mod:`lamina.commands` and exposes
``register(subparsers)``; this module discovers them, so adding a command never touches
this file. Every :class:`~lamina.errors.LaminaError` becomes one line on stderr and its exit
code; secrets are never part of such messages by construction (see :mod:`lamina.redact`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from lamina import __version__, commands
from lamina.errors import LaminaError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lamina",
        description=(
            "Build, test and publish a layered tree of HEP container images "
            "(OS base -> framework -> ML -> analysis) for several architectures."
        ),
        epilog=(
            "Settings precedence: flag > LAMINA_<SETTING> environment variable > "
            "recipe.yaml > default. Run 'lamina COMMAND --help' for details."
        ),
    )
    parser.add_argument("--version", action="version", version=f"lamina {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        metavar="DIR",
        default=None,
        help="project directory holding recipe.yaml (default: LAMINA_PROJECT or the current "
        "directory)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code: int = args.handler(args)
    except LaminaError as exc:
        print(f"lamina: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # `lamina ... | head`: the reader went away, which is not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # disk full, permission denied, a name too long: the system's words, one line
        where = f": {exc.filename}" if exc.filename else ""
        print(f"lamina: error: {exc.strerror or exc}{where}"[:500], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lamina: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
