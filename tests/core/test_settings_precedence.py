"""One precedence everywhere (README "Settings"): flag > environment > recipe.yaml > default.

One table: every setting that has more than one source, each source with a value of its
own. For every combination of sources set (all subsets, the empty one giving the default)
the value in force must be the one of the highest-ranked source present. Tree settings are
read the way a command reads them: the real argument parser (so each flag is the one a user
types), then the commands' shared ``load``; the others through the function the command
calls (``cvmfs mr``'s config, the publish targets, the HTTP/build deadlines, the registry
retries, the host ``LAMINA_REGISTRY_*`` credentials are bound to).
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lamina.builders.base import DEFAULT_BUILD_TIMEOUT, build_timeout
from lamina.cli import build_parser
from lamina.commands._common import load
from lamina.commands._targets import targets_from
from lamina.commands.cvmfs import _config as cvmfs_config_of
from lamina.credentials import CredentialStore
from lamina.http import DEFAULT_TIMEOUT, http_timeout
from lamina.recipe import DEFAULT_EPOCH, load_recipe
from lamina.registry_client import _default_retries

FLAG, ENV, RECIPE = "flag", "env", "recipe"


@dataclass(frozen=True)
class Source:
    kind: str  # FLAG (argv words), ENV (variable name) or RECIPE (YAML line(s))
    where: str  # the flag, the variable or the recipe key as a user writes it
    value: str  # what the user writes
    expect: object  # the value in force when this source wins


@dataclass(frozen=True)
class Case:
    setting: str
    command: tuple[str, ...]  # argv after -C ROOT, before the flags
    sources: tuple[Source, ...]  # highest rank first
    default: object
    read: Callable[[argparse.Namespace, Path], object]


def tree_setting(field: str) -> Callable[[argparse.Namespace, Path], object]:
    return lambda args, root: getattr(load(args)[1], field)


def cvmfs_setting(field: str) -> Callable[[argparse.Namespace, Path], object]:
    return lambda args, root: getattr(cvmfs_config_of(load_recipe(root), args), field)


def target_cert_dir(args: argparse.Namespace, root: Path) -> object:
    return targets_from(args, load_recipe(root), args.to)[0].cert_dir


def credential_host(args: argparse.Namespace, root: Path) -> object:
    store = CredentialStore.load(targets=["target.example:5000"])
    return [host for host in ("target.example:5000", "chosen.example")
            if (found := store.for_host(host)) is not None
            and found.source == "LAMINA_REGISTRY_USERNAME/PASSWORD"]


def env_only(function: Callable[[], object]) -> Callable[[argparse.Namespace, Path], object]:
    return lambda args, root: function()


BUILD = ("build",)
MR = ("cvmfs", "mr", "--dry-run")
CASES = [
    Case("store", BUILD, (
        Source(FLAG, "--store", "/srv/flag-store", Path("/srv/flag-store")),
        Source(ENV, "LAMINA_STORE", "env-store", "ROOT/env-store"),
        Source(RECIPE, "store", "recipe-store", "ROOT/recipe-store")),
        "ROOT/.lamina/store", tree_setting("store")),
    Case("jobs", BUILD, (
        Source(FLAG, "-j", "7", 7), Source(ENV, "LAMINA_JOBS", "5", 5),
        Source(RECIPE, "jobs", "3", 3)), 2, tree_setting("jobs")),
    Case("epoch", BUILD, (
        Source(FLAG, "--source-date-epoch", "1000", 1000),
        Source(ENV, "LAMINA_SOURCE_DATE_EPOCH", "2000", 2000),
        Source(ENV, "SOURCE_DATE_EPOCH", "3000", 3000),
        Source(RECIPE, "source_date_epoch", "4000", 4000)), DEFAULT_EPOCH, tree_setting("epoch")),
    # two values only: each source's differs from the next lower one's
    Case("builder", BUILD, (
        Source(FLAG, "--builder", "docker", "docker"),
        Source(ENV, "LAMINA_BUILDER", "buildah", "buildah"),
        Source(RECIPE, "builder", "docker", "docker")), "buildah", tree_setting("builder")),
    Case("ca bundle", BUILD, (
        Source(FLAG, "--ca-bundle", "flag-ca.pem", "CWD/flag-ca.pem"),
        Source(ENV, "LAMINA_CA_BUNDLE", "env-ca.pem", "CWD/env-ca.pem")),
        None, tree_setting("ca_bundle")),
    Case("state", BUILD, (
        Source(ENV, "LAMINA_STATE", "/srv/env-state", Path("/srv/env-state")),),
        "ROOT/.lamina", tree_setting("state")),
    Case("state (relative, like the store)", BUILD, (
        Source(ENV, "LAMINA_STATE", "env-state", "ROOT/env-state"),),
        "ROOT/.lamina", tree_setting("state")),
    Case("gitlab url", MR, (
        Source(FLAG, "--gitlab-url", "https://flag.example", "https://flag.example"),
        Source(ENV, "LAMINA_GITLAB_URL", "https://env.example", "https://env.example"),
        Source(RECIPE, "cvmfs.gitlab_url", "https://recipe.example", "https://recipe.example")),
        "https://gitlab.cern.ch", cvmfs_setting("gitlab_url")),
    Case("cvmfs project", MR, (
        Source(FLAG, "--project", "flag/sync", "flag/sync"),
        Source(ENV, "LAMINA_CVMFS_PROJECT", "env/sync", "env/sync"),
        Source(RECIPE, "cvmfs.project", "recipe/sync", "recipe/sync")),
        "unpacked/sync", cvmfs_setting("project")),
    Case("cvmfs branch", MR, (
        Source(FLAG, "--branch", "flag-branch", "flag-branch"),
        Source(ENV, "LAMINA_CVMFS_BRANCH", "env-branch", "env-branch"),
        Source(RECIPE, "cvmfs.branch", "recipe-branch", "recipe-branch")),
        "master", cvmfs_setting("branch")),
    Case("cvmfs fork", MR, (
        Source(FLAG, "--fork", "flag/fork", "flag/fork"),
        Source(ENV, "LAMINA_CVMFS_FORK", "env/fork", "env/fork"),
        Source(RECIPE, "cvmfs.fork", "recipe/fork", "recipe/fork")),
        None, cvmfs_setting("fork")),
    Case("cvmfs wishlist file", MR, (
        Source(ENV, "LAMINA_CVMFS_FILE", "env.yaml", "env.yaml"),
        Source(RECIPE, "cvmfs.file", "recipe.yaml.in", "recipe.yaml.in")),
        "recipe.yaml", cvmfs_setting("file")),
    Case("registry CA directory", ("publish", "--to", "127.0.0.1:5000/ns"), (
        Source(FLAG, "--cert-dir", "/srv/flag-certs", Path("/srv/flag-certs")),
        Source(ENV, "LAMINA_CERT_DIR", "/srv/env-certs", Path("/srv/env-certs"))),
        None, target_cert_dir),
    Case("HTTP deadline", BUILD, (Source(ENV, "LAMINA_HTTP_TIMEOUT", "7.5", 7.5),),
         DEFAULT_TIMEOUT, env_only(http_timeout)),
    Case("build deadline", BUILD, (Source(ENV, "LAMINA_BUILD_TIMEOUT", "90", 90.0),),
         DEFAULT_BUILD_TIMEOUT, env_only(build_timeout)),
    Case("registry retries", BUILD, (Source(ENV, "LAMINA_REGISTRY_RETRIES", "3", 3),),
         8, env_only(_default_retries)),
    Case("registry of LAMINA_REGISTRY_USERNAME/PASSWORD", BUILD, (
        Source(ENV, "LAMINA_REGISTRY_HOST", "chosen.example", ["chosen.example"]),),
        ["target.example:5000"], credential_host),
]
ALL_ENV = sorted({s.where for c in CASES for s in c.sources if s.kind == ENV}
                 | {"LAMINA_PROJECT", "LAMINA_REGISTRY_USERNAME", "LAMINA_REGISTRY_PASSWORD"})


def combinations() -> list[tuple[Case, tuple[Source, ...]]]:
    return [(case, chosen) for case in CASES for n in range(len(case.sources) + 1)
            for chosen in itertools.combinations(case.sources, n)]


def case_id(item: object) -> str:
    if isinstance(item, Case):
        return item.setting
    assert isinstance(item, tuple)
    return "+".join(s.where for s in item) or "default"


def recipe_text(chosen: tuple[Source, ...]) -> str:
    lines = ["platforms: [linux/amd64]"]
    cvmfs = [s for s in chosen if s.kind == RECIPE and s.where.startswith("cvmfs.")]
    lines += [f"{s.where}: {s.value}" for s in chosen if s.kind == RECIPE and s not in cvmfs]
    if cvmfs:
        lines += ["cvmfs:"] + [f"  {s.where.split('.', 1)[1]}: {s.value}" for s in cvmfs]
    return "\n".join(lines) + "\n"


def make_tree(root: Path, chosen: tuple[Source, ...]) -> None:
    (root / "images/app").mkdir(parents=True)
    (root / "layers/root").mkdir(parents=True)
    (root / "recipe.yaml").write_text(recipe_text(chosen))
    (root / "images/app/image.yaml").write_text("parent: scratch\nlayers: [root]\n")
    (root / "layers/root/layer.yaml").write_text("kind: rootfs\ntarball: root.tar\n")
    (root / "layers/root/root.tar").write_bytes(b"")
    for name in ("flag-ca.pem", "env-ca.pem"):
        (root.parent / name).write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")


def expected(value: object, root: Path) -> object:
    """``ROOT/x``: relative to the project (store, state); ``CWD/x``: to the directory the
    user runs lamina in (a CA bundle path given on the command line or in the environment)."""
    if isinstance(value, str) and value.startswith("ROOT/"):
        return root / value.removeprefix("ROOT/")
    if isinstance(value, str) and value.startswith("CWD/"):
        return root.parent / value.removeprefix("CWD/")
    return value


@pytest.mark.parametrize(("case", "chosen"), combinations(), ids=case_id)
def test_the_highest_source_set_wins(case: Case, chosen: tuple[Source, ...], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root = (tmp_path / "project").resolve()
    make_tree(root, chosen)
    for name in ALL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMINA_REGISTRY_USERNAME", "someone")
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", "not-a-real-password")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.docker/config.json of the machine
    monkeypatch.chdir(root.parent)  # not the project: `-C` tells where that is
    flags = [word for s in chosen if s.kind == FLAG for word in (s.where, s.value)]
    for source in chosen:
        if source.kind == ENV:
            monkeypatch.setenv(source.where, source.value)
    # the parser as `lamina` builds it for this command (commands register lazily)
    args = build_parser(case.command[0]).parse_args(["-C", str(root), *case.command, *flags])
    winner = chosen[0].expect if chosen else case.default
    assert case.read(args, root) == expected(winner, root)


@pytest.mark.parametrize(("flag", "env", "expect"), [
    ("other", "env-project", "other"), (None, "env-project", "env-project"),
    (None, None, "project")])
def test_the_project_directory(flag: str | None, env: str | None, expect: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``-C`` > ``LAMINA_PROJECT`` > the current directory."""
    for name in ("project", "other", "env-project"):
        make_tree(tmp_path / name, ())
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.delenv("LAMINA_PROJECT", raising=False)
    if env is not None:
        monkeypatch.setenv("LAMINA_PROJECT", str(tmp_path / env))
    argv = (["-C", str(tmp_path / flag)] if flag else []) + ["build"]
    assert load(build_parser("build").parse_args(argv))[1].project == \
        (tmp_path / expect).resolve()
