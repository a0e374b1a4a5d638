"""Subcommands of the ``lamina`` CLI, one module each, named in :data:`COMMANDS`.

A module here defines ``register(subparsers)`` which adds its parser (named as the module,
with its one-line help from :data:`COMMANDS`) and sets ``handler=<callable(args) -> int>`` as
a default.

Why a static table instead of discovering the modules: importing a command module pulls in
what the command needs (rich, the store, the registry client, ...), and importing all of them
was most of the cost of ``lamina --version``. With the names and their help written here,
:mod:`lamina.cli` lists every command in ``lamina --help`` without importing any of them, and
imports only the module of the command that runs (``lamina plan --help`` imports just
:mod:`lamina.commands.plan`). ``tests/core/test_cli_startup.py`` checks that this table and the
modules agree, so a new command cannot be forgotten here.
"""

from __future__ import annotations

# name -> the one-line help `lamina --help` shows; the module is lamina.commands.<name>
COMMANDS: dict[str, str] = {
    "build": "build and test what changed, parents first, into the local store",
    "ci": "generate CI pipelines from the image graph",
    "cvmfs": "unpacked.cern.ch: wishlist entries and the sync merge request",
    "diff": "package additions, removals, version and size changes between builds",
    "doctor": "check tools, qemu/binfmt per platform, store and registries",
    "exec": "run a command in an unpacked image as apptainer exec does (bubblewrap; read-only "
            "root, image env, host cwd, $HOME, default binds)",
    "harbor": "Harbor: bootstrap a project (robot, immutability, retention), scan",
    "init": "start an analysis repository on top of a published image pinned by digest",
    "jupyterhub": "z2jh Helm values / KubeSpawner profile_list for published notebook "
                  "images, pinned by digest",
    "lock": "resolve pip layers per platform into hashed lock files; report packages with no "
            "wheel for a platform (the plan then excludes it)",
    "plan": "show each image x platform as up to date, to build (with why), blocked or "
            "excluded",
    "publish": "push tested images: per-arch <tag>-<arch> tags, then the index <tag>",
    "render": "print the Containerfile of an image",
    "run": "run an unpacked image's /.singularity.d/runscript (ENTRYPOINT + CMD) as apptainer "
           "run does",
    "test": "run image tests (own and inherited) and record the results with the image",
    "unpack": "lay an image out as unpacked.cern.ch does (.flat/<cc>/<config digest>, public "
              "symlink, /.singularity.d)",
}


def module_name(command: str) -> str:
    """The module that registers and runs ``command``."""
    return f"{__name__}.{command}"
