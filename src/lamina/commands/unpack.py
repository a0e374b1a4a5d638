"""``lamina unpack REF DIR``: an image laid out as unpacked.cern.ch will serve it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.table import Table

from lamina.commands._common import console, load, print_json
from lamina.errors import UsageError
from lamina.settings import project_dir
from lamina.store import Store
from lamina.unpack.budget import budget_for
from lamina.unpack.layout import unpack
from lamina.unpack.source import (
    Source,
    from_layout,
    from_registry,
    from_store,
    is_registry_ref,
    parse_public_name,
)

NOTE_TEXT = {
    "skipped_special": "device nodes / fifos skipped",
    "dangling_hardlinks": "hardlinks to missing files made empty files (as DUCC, cvmfs#4286)",
    "setid_files": "setuid/setgid files (no effect on CVMFS unless CVMFS_SUID=yes)",
    "dropped_cvmfs": "CVMFS control files dropped",
    "not_gzip": "layers not gzip-compressed (unpacked.cern.ch would fail to ingest them)",
    "foreign_layers": "foreign layers skipped",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "unpack", help="lay an image out as unpacked.cern.ch does (.flat/<cc>/<config digest>, "
                       "public symlink, /.singularity.d)")
    parser.add_argument("ref", metavar="REF",
                        help="store image (IMAGE or IMAGE-ARCH), oci:PATH[:REF], or a registry "
                             "reference docker://HOST/REPO:TAG")
    parser.add_argument("dir", metavar="DIR", help="output root (stands for "
                                                   "/cvmfs/unpacked.cern.ch)")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", default=None,
                        help="only this platform of a multi-arch image")
    parser.add_argument("--name", metavar="REGISTRY/REPO:TAG", default=None,
                        help="public path to create (default: the registry reference, or "
                             "localhost/lamina/IMAGE:latest for a store image)")
    parser.add_argument("--store", metavar="DIR", default=None,
                        help="local OCI layout store (env LAMINA_STORE; default .lamina/store)")
    parser.add_argument("--src-tls-verify", choices=["true", "false"], default="true",
                        help="verify the registry's TLS certificate (default true)")
    parser.add_argument("--src-cert-dir", metavar="DIR", default=None,
                        help="directory with the registry's ca.crt")
    parser.add_argument("--authfile", metavar="FILE", default=None,
                        help="containers auth file for the registry (default: the "
                             "containers/docker auth files; LAMINA_REGISTRY_* only for the "
                             "recipe's targets or LAMINA_TARGET)")
    parser.add_argument("--max-bytes", metavar="SIZE", default=None,
                        help="stop when the files written (uncompressed) would exceed SIZE; "
                             "suffixes K, M, G, T are powers of 1024, e.g. 20G (default: the "
                             "smaller of 64G and the free space on DIR's filesystem)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def store_for(args: argparse.Namespace) -> Store:
    """The project's store when there is a project; otherwise --store, LAMINA_STORE or
    ./.lamina/store, so that unpacking a registry image needs no recipe."""
    if (project_dir(getattr(args, "project", None)) / "recipe.yaml").is_file():
        _, settings = load(args)
        return Store(settings.store)
    raw = args.store or os.environ.get("LAMINA_STORE") or ".lamina/store"
    return Store(Path(raw).resolve())


def resolve_source(args: argparse.Namespace) -> Source:
    name = parse_public_name(args.name) if args.name else None
    ref: str = args.ref
    if ref.startswith("oci:"):
        body = ref[len("oci:"):]
        path, _, image = body.partition(":")
        if not path:
            raise UsageError("oci: reference needs a path: oci:PATH[:REF]")
        layout = Path(path).resolve()
        public = name or parse_public_name(f"localhost/{(image or 'image').lower()}:latest")
        return from_layout(layout, image or None, args.platform, public)
    store = store_for(args)
    if is_registry_ref(ref):
        return from_registry(store, ref, args.platform, name,
                             tls_verify=args.src_tls_verify == "true",
                             cert_dir=Path(args.src_cert_dir) if args.src_cert_dir else None,
                             authfile=Path(args.authfile) if args.authfile else None)
    return from_store(store, ref, args.platform, name)


def run(args: argparse.Namespace) -> int:
    budget = budget_for(args.max_bytes, Path(args.dir))  # a bad size fails before any copy
    source = resolve_source(args)
    result = unpack(source, Path(args.dir), budget)
    if args.json:
        print_json({"public": result.public, "path": str(result.public_path),
                    "target": result.target,
                    "flats": [{"platform": f.arch_dir, "config_digest": f.config_digest,
                               "path": str(f.path), "reused": f.reused, "summary": f.stats}
                              for f in result.flats]})
        return 0
    out = console()
    table = Table(title=f"lamina unpack {result.public}", title_justify="left")
    for column in ("platform", "flat", "files", "dirs", "links", "status"):
        table.add_column(column, overflow="fold")
    for flat in result.flats:
        s = flat.stats
        table.add_row(flat.arch_dir, str(flat.path), str(s.get("files", "")),
                      str(s.get("dirs", "")),
                      str(s.get("symlinks", 0) + s.get("hardlinks", 0)) if s else "",
                      "reused" if flat.reused else "unpacked")
    out.print(table)
    for flat in result.flats:
        for kind, examples in (flat.stats.get("notes") or {}).items():
            count = flat.stats.get(kind, len(examples))
            out.print(f"note ({flat.arch_dir}): {count} {NOTE_TEXT.get(kind, kind)}: "
                      f"{', '.join(examples)}{' …' if count > len(examples) else ''}")
    out.print(f"{result.public_path} -> {result.target}")
    return 0
