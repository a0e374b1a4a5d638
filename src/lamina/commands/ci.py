"""``lamina ci gitlab``: write the child pipeline for what the plan says must be built."""

from __future__ import annotations

import argparse
import sys

from ruamel.yaml import YAML

from lamina.ci_gitlab import DEFAULT_LAMINA, child_pipeline
from lamina.commands import COMMANDS
from lamina.commands._common import plan_for


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ci", help=COMMANDS["ci"])
    sub = parser.add_subparsers(dest="ci_kind", metavar="KIND", required=True)
    gitlab = sub.add_parser("gitlab", help="GitLab child pipeline YAML on stdout")
    gitlab.add_argument("images", nargs="*", metavar="IMAGE")
    gitlab.add_argument("--platform", action="append", default=None, metavar="OS/ARCH")
    gitlab.add_argument("--store", default=None)
    gitlab.add_argument("--target", default="$LAMINA_TARGET",
                        help="publish target REGISTRY/NAMESPACE (default: the CI variable "
                             "$LAMINA_TARGET)")
    gitlab.add_argument("--lamina", default=DEFAULT_LAMINA, metavar="COMMAND",
                        help="how jobs run lamina, as the pipeline variable $LAMINA "
                             f"(default: {DEFAULT_LAMINA}, i.e. on the runner's PATH)")
    gitlab.add_argument("--setup", default=None, metavar="COMMAND",
                        help="command each job runs first (e.g. scripts/setup)")
    gitlab.add_argument("--all", action="store_true",
                        help="include up-to-date nodes too (a full rebuild pipeline)")
    gitlab.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    recipe, settings, _, entries = plan_for(args)
    if args.all:
        for entry in entries:
            if entry.status == "up-to-date":
                entry.status = "build"
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096  # long paths and commands stay on one line, as a reader expects
    yaml.dump(child_pipeline(recipe, entries, target=args.target, store=settings.store,
                             state=settings.state, lamina=args.lamina, setup=args.setup),
              sys.stdout)
    return 0
