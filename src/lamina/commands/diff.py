"""``lamina diff OLD NEW``: release notes between two builds (packages and size)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lamina.commands._common import load, platforms_arg, print_json
from lamina.errors import UsageError
from lamina.jsondoc import MiB, expect_int, expect_object, expect_str, parse_json, read_json
from lamina.manifests import diff
from lamina.platforms import host_platform
from lamina.store import Store

MANIFEST_LIMIT = 64 * MiB  # a package manifest of a big image is well under 1 MiB


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


def checked_manifest(data: object, where: str) -> dict[str, Any]:
    """A package manifest (as :func:`lamina.manifests.build_manifest` writes it) with the
    fields the diff reads, or one line saying which is missing or of the wrong type."""
    manifest = expect_object(data, where, "(top level)", UsageError)
    for key in ("image", "key", "platform"):
        expect_str(manifest.get(key), where, key, UsageError)
    packages = expect_object(manifest.get("packages"), where, "packages", UsageError)
    for kind in ("pip", "deb"):
        listed = expect_object(packages.get(kind, {}), where, f"packages.{kind}", UsageError)
        for name, version in listed.items():
            expect_str(version, where, f"packages.{kind}.{name}", UsageError)
    if "size" in manifest:
        expect_int(manifest["size"], where, "size", UsageError)
    return manifest


def resolve(store: Store, spec: str, arch: str) -> object:
    path = Path(spec)
    if path.is_file():
        return read_json(path, limit=MANIFEST_LIMIT, error=UsageError, what="manifest file")
    image, _, key = spec.partition("@")
    if not key:
        current = store.report(image, arch, "manifest.json")
        if current is not None:
            return parse_json(current, f"stored manifest of {image} {arch}", UsageError)
    else:
        for found in store.history(image, arch, key.removeprefix("sha256:")):
            return found
    raise UsageError(f"no manifest for '{spec}' on {arch} in {store.root} (build it first)")


def run(args: argparse.Namespace) -> int:
    _, settings = load(args)
    store = Store(settings.store)
    platforms = platforms_arg(args)
    arch = (platforms[0] if platforms else host_platform()).arch
    old = checked_manifest(resolve(store, args.old, arch), args.old)
    new = checked_manifest(resolve(store, args.new, arch), args.new)
    changes = diff(old, new)
    if args.json:
        print_json({"old": old["key"], "new": new["key"], "changes": changes})
    else:
        sys.stdout.write(f"{old['image']} {old['key'][7:19]} -> {new['image']} "
                         f"{new['key'][7:19]} ({old['platform']})\n")
        sys.stdout.write("".join(f"{line}\n" for line in changes) or "no changes\n")
    return 0
