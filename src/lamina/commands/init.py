"""``lamina init``: scaffold an analyst's repository on a published, digest-pinned image."""

from __future__ import annotations

import argparse
from pathlib import Path

from lamina.commands import COMMANDS
from lamina.scaffold import scaffold


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("init", help=COMMANDS["init"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--from", dest="parent", required=True,
                        metavar="REGISTRY/REPO[:TAG]@sha256:DIGEST")
    parser.add_argument("--name", default=None, help="image name (default: directory name)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target: Path = args.directory
    name = args.name or target.resolve().name.lower()
    for path in scaffold(target, name, args.parent):
        print(f"created {path}")
    print(f"next: add requirements to layers/{name}-requirements/requirements.in, lock them, "
          f"put code in layers/{name}-code/src, then lamina -C {target} build")
    return 0
