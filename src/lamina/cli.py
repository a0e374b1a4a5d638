"""The ``lamina`` command line.

Each subcommand lives in its own module under :mod:`lamina.commands` and exposes
``register(subparsers)``; this module discovers them, so adding a command never touches
this file. Every :class:`~lamina.errors.LaminaError` becomes one line on stderr and its exit
code; secrets are never part of such messages by construction (see :mod:`lamina.redact`).

No traceback reaches a user: an operating-system error (a full disk, a denied permission) is
the system's words in one line, Ctrl-C is one line and exit 130 (:mod:`lamina.entry` guards the
start-up, before this module is imported), a name that is not UTF-8 is printed escaped
(:mod:`lamina.textout`), and anything else is a bug in lamina, reported in one line with exit
70 (``LAMINA_TRACEBACK=1`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from lamina import __version__, commands, textout
from lamina.entry import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, INTERRUPTED, silence_stdout
from lamina.errors import LaminaError

EXIT_INTERNAL = 70  # EX_SOFTWARE (sysexits.h)


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


def _error(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # stderr closed too: the exit code tells
        print(f"lamina: error: {text}"[:2000], file=sys.stderr)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; every failure the user can act on is raised as a
    :class:`LaminaError` below this point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    code: int = args.handler(args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    textout.install()
    try:
        return run(argv)
    except LaminaError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(INTERRUPTED)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `lamina ... | head`: the reader went away; make the final flush harmless
        silence_stdout()
        _error("the output pipe was closed before all output was written")
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        # disk full, permission denied, a name too long: the system's words, one line
        where = f": {exc.filename}" if exc.filename else ""
        _error(f"{exc.strerror or exc}{where}"[:500])
        return 1
    except Exception as exc:
        if os.environ.get("LAMINA_TRACEBACK"):
            raise
        _error(f"internal error: {type(exc).__name__}: {exc} (a bug in lamina; please "
               "report it; LAMINA_TRACEBACK=1 shows where)")
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
