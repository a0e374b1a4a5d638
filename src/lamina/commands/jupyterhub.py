"""``lamina jupyterhub``: digest-pinned z2jh values or a KubeSpawner profile list."""

from __future__ import annotations

import argparse
import sys

from ruamel.yaml import YAML

from lamina.builders.buildah import BuildahBuilder
from lamina.commands import COMMANDS
from lamina.commands._common import load
from lamina.external import ExternalResolver
from lamina.jupyterhub import hub_images, kubespawner_profile_list, version_mismatch, z2jh_values
from lamina.plan import make_plan
from lamina.platforms import host_platform
from lamina.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "jupyterhub", help=COMMANDS["jupyterhub"])
    parser.add_argument("--format", choices=["z2jh", "kubespawner"], default="z2jh")
    parser.add_argument("--repository", default=None, metavar="REGISTRY/NS",
                        help="the publication to pin (the REGISTRY/NAMESPACE given to lamina "
                             "publish --to); required when an image is published in more "
                             "than one place")
    parser.add_argument("--hub-version", default=None,
                        help="hub's JupyterHub version to check the images against "
                             "(default: recipe jupyterhub.hub_version)")
    parser.add_argument("--store", default=None)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings = load(args)
    store = Store(settings.store)
    images = hub_images(recipe, store, args.repository)
    hub_version = args.hub_version or (recipe.settings.get("jupyterhub") or {}).get(
        "hub_version")
    if hub_version:
        entries = make_plan(recipe, store, settings.epoch, [i.image for i in images],
                            [host_platform()], ExternalResolver(settings.cache))
        builder = BuildahBuilder()
        for entry in entries:
            if entry.unit is None or entry.image not in {i.image for i in images}:
                continue
            builder.ensure_local(entry.unit, store, settings.logs / "jupyterhub.log")
            found = builder.output_of(entry.unit, "jupyterhub-singleuser --version")
            warning = version_mismatch(str(hub_version), found.split()[-1])
            if warning:
                sys.stderr.write(f"lamina: warning: {entry.image}: {warning}\n")
    if args.format == "kubespawner":
        sys.stdout.write(kubespawner_profile_list(images))
    else:
        yaml = YAML()
        yaml.default_flow_style = False
        yaml.dump(z2jh_values(images), sys.stdout)
    return 0
