"""``lamina lock``: hashed per-platform lock files for pip layers, and the no-wheel report."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from lamina.commands import COMMANDS
from lamina.commands._common import console, load, platforms_arg, print_json
from lamina.errors import UsageError
from lamina.lock import LockResult, lock_layer
from lamina.platforms import Platform
from lamina.recipe import Recipe


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lock", help=COMMANDS["lock"])
    parser.add_argument("layers", nargs="*", metavar="LAYER",
                        help="pip layers to lock (default: every pip layer with requirements)")
    parser.add_argument("--platform", action="append", metavar="OS/ARCH", default=None,
                        help="only this platform (default: the platforms of the images "
                             "using the layer)")
    parser.add_argument("--ca-bundle", metavar="FILE", default=None,
                        help="CA bundle for reaching the package index (env LAMINA_CA_BUNDLE)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def below(recipe: Recipe, layer_name: str, platform: Platform) -> list[Path]:
    """Lock files of the pip layers under ``layer_name`` in every image using it: a child
    layer is resolved against what its parents already installed, so it never reinstalls
    a parent's package at another version."""
    out: list[Path] = []
    for image in recipe.images.values():
        names = [layer.name for layer in image.layers]
        if layer_name not in names:
            continue
        lower = [layer for parent in reversed(recipe.ancestors(image.name))
                 for layer in recipe.images[parent].layers]
        lower += image.layers[:names.index(layer_name)]
        for layer in lower:
            if layer.kind != "pip":
                continue
            path = layer.file(("lock",), platform)
            if path.is_file() and path not in out:
                out.append(path)
    return out


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    lockable = {name: layer for name, layer in recipe.layers.items()
                if layer.kind == "pip" and layer.spec.get("requirements")}
    for name in args.layers:
        if name not in lockable:
            raise UsageError(f"layer '{name}' is not a pip layer with 'requirements' "
                             f"(lockable: {', '.join(sorted(lockable)) or 'none'})")
    chosen = args.layers or sorted(lockable)
    only = platforms_arg(args)
    out = console()
    results: list[LockResult] = []
    for name in chosen:
        users: list[Platform] = []
        for image in recipe.images.values():
            if any(layer.name == name for layer in image.layers):
                users += [p for p in image.platforms if p not in users]
        reference = None
        for platform in sorted(users):
            if only and platform not in only:
                continue
            if not args.json:
                out.print(f"[dim]locking {name} for {platform}...[/]")
            result = lock_layer(lockable[name], platform, settings.ca_bundle, reference,
                                below(recipe, name, platform))
            if result.ok and reference is None:
                reference = result.path
            results.append(result)
    if args.json:
        print_json([{"layer": r.layer, "platform": r.platform.name, "lock": str(r.path),
                     "packages": r.packages, "no_wheel": r.no_wheel, "changed": r.changed}
                    for r in results])
    else:
        table = Table(title="lamina lock", title_justify="left")
        for column in ("layer", "platform", "packages", "lock file", "result"):
            table.add_column(column, overflow="fold")
        for r in results:
            verdict = (f"[yellow]no wheel: {', '.join(r.no_wheel)}[/]" if r.no_wheel
                       else ("updated" if r.changed else "unchanged"))
            table.add_row(r.layer, r.platform.name, str(r.packages), r.path.name, verdict)
        out.print(table)
    return 0
