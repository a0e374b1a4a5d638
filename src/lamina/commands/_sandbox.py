"""The apptainer options ``lamina exec`` and ``lamina run`` share, before or after DIR.

Names and short forms are apptainer's (``cmd/internal/cli/action_flags.go``): ``-B/--bind``,
``-e/--cleanenv``, ``-c/--contain``, ``-C/--containall``, ``--no-home``, ``--pwd``. As with
apptainer, what follows DIR is the command (``exec``) or the runscript's arguments (``run``);
options may still be written between DIR and a ``--`` that ends them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from lamina.errors import UsageError

if TYPE_CHECKING:
    from lamina.sandbox_exec import RunOptions


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-B", "--bind", metavar="SRC[:DST[:ro|rw]]", action="append",
                        default=None,
                        help="bind a host path (repeatable, or comma-separated as apptainer "
                             "takes them; APPTAINER_BIND adds more); a destination the image "
                             "lacks is created")
    parser.add_argument("-e", "--cleanenv", action="store_true",
                        help="pass no host variable but TERM and the proxies (LANG=C)")
    parser.add_argument("-c", "--contain", action="store_true",
                        help="private /tmp, /var/tmp and $HOME, minimal /dev, no current "
                             "directory bind")
    parser.add_argument("-C", "--containall", action="store_true",
                        help="--contain plus --cleanenv and PID and IPC namespaces")
    parser.add_argument("--no-home", action="store_true", help="do not bind the home directory")
    parser.add_argument("--pwd", metavar="DIR", default=None,
                        help="working directory inside (default: the current directory, or "
                             "$HOME with --contain)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="kill the command after SECONDS and exit 124 (lamina's own; "
                             "default: none, the command runs as long as it runs)")


def split_late_options(args: argparse.Namespace, prog: str) -> list[str]:
    """The command after DIR, with options written between DIR and ``--`` folded into args."""
    rest = list(args.rest)
    if "--" in rest and rest.index("--") > 0 and rest[0].startswith("-"):
        late = argparse.ArgumentParser(prog=prog, add_help=False)
        add_options(late)
        split = rest.index("--")
        extra, unknown = late.parse_known_args(rest[:split])
        if unknown:
            raise UsageError(f"unexpected arguments before '--': {' '.join(unknown)}")
        args.bind = (args.bind or []) + (extra.bind or [])
        for flag in ("cleanenv", "contain", "containall", "no_home"):
            setattr(args, flag, getattr(args, flag) or getattr(extra, flag))
        args.pwd = extra.pwd or args.pwd
        args.timeout = extra.timeout if extra.timeout is not None else args.timeout
        rest = rest[split:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    return rest


def run_options(args: argparse.Namespace) -> RunOptions:
    from lamina.sandbox_exec import RunOptions

    if args.timeout is not None and not 0 < args.timeout < 10**9:
        raise UsageError(f"--timeout {args.timeout:g}: expected a positive number of seconds")
    return RunOptions(timeout=args.timeout, binds=list(args.bind or []), clean_env=args.cleanenv,
                      contain=args.contain, containall=args.containall,
                      no_home=args.no_home, pwd=args.pwd)


def warn(message: str) -> None:
    print(f"lamina: warning: {message}", file=sys.stderr)
