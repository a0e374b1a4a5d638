"""``lamina diff OLD NEW``: release notes between two builds (packages and size)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lamina.commands._common import load, platforms_arg, print_json
from lamina.errors import UsageError
from lamina.manifests import diff
from lamina.platforms import host_platform
from lamina.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diff", help="package additions, removals, version and size changes between builds")
    parser.add_argument("old", metavar="OLD", help="IMAGE@KEYPREFIX (an earlier build), IMAGE "
                                                  "(the current one) or a manifest JSON file")
    parser.add_argument("new", metavar="NEW")
    parser.add_argument("--platform", action="append", default=None, metavar="OS/ARCH")
    parser.add_argument("--store", default=None)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


def resolve(store: Store, spec: str, arch: str) -> dict[str, Any]:
    path = Path(spec)
    if path.is_file():
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    image, _, key = spec.partition("@")
    if not key:
        current = store.report(image, arch, "manifest.json")
        found_now = json.loads(current) if current is not None else None
        if isinstance(found_now, dict):
            return found_now
    else:
        for found in store.history(image, arch, key.removeprefix("sha256:")):
            return found
    raise UsageError(f"no manifest for '{spec}' on {arch} in {store.root} (build it first)")


def run(args: argparse.Namespace) -> int:
    _, settings = load(args)
    store = Store(settings.store)
    platforms = platforms_arg(args)
    arch = (platforms[0] if platforms else host_platform()).arch
    old, new = resolve(store, args.old, arch), resolve(store, args.new, arch)
    changes = diff(old, new)
    if args.json:
        print_json({"old": old["key"], "new": new["key"], "changes": changes})
    else:
        sys.stdout.write(f"{old['image']} {old['key'][7:19]} -> {new['image']} "
                         f"{new['key'][7:19]} ({old['platform']})\n")
        sys.stdout.write("".join(f"{line}\n" for line in changes) or "no changes\n")
    return 0
