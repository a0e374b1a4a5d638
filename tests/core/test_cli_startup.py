"""Start-up stays cheap, asserted by what is imported (never by a duration).

``lamina --version`` and ``--help`` import no command module and none of the heavy libraries;
``lamina COMMAND --help`` imports that command's module only; ``lamina plan`` reads, checks
and plans a tree without jsonschema or an HTTP stack. Each case runs the guarded entry point
(:func:`lamina.entry.main`, what the console script calls) in a fresh interpreter and reads
``sys.modules`` after it returned. The static command table of :mod:`lamina.commands` is
compared with the modules, so ``lamina --help`` cannot drift from the commands that exist.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lamina.commands
from lamina.commands import COMMANDS, module_name

TREES = Path(__file__).resolve().parent.parent / "trees"
HEAVY = ("jsonschema", "requests", "urllib3", "docker", "gitlab", "rich", "ruamel", "yaml",
         "re2", "rfc3987_syntax", "lark", "ssl", "http.client")
# what `python -c` runs: the console script's call, then the modules it left loaded
PROBE = ("import json, os, sys\n"
         "sys.argv[0] = 'lamina'\n"
         "from lamina.entry import main\n"
         "code = main()\n"
         "with open(os.environ['PROBE_MODULES'], 'w') as out:\n"
         "    json.dump(sorted(sys.modules), out)\n"
         "sys.exit(code)\n")


def run_lamina(tmp_path: Path, *args: str, cwd: Path | None = None
               ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    modules = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, *args],
                          cwd=cwd or tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "LAMINA_STORE": str(tmp_path / "store"),
                               "LAMINA_STATE": str(tmp_path / "state"),
                               "PROBE_MODULES": str(modules)})
    return proc, set(json.loads(modules.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == h or m.startswith(h + ".") for h in HEAVY))


def command_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith("lamina.commands.")
                  and not m.startswith("lamina.commands._"))


def test_version_imports_no_command_and_no_heavy_library(tmp_path: Path) -> None:
    proc, modules = run_lamina(tmp_path, "--version")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "lamina 0.1.0\n", "")
    assert command_modules(modules) == []
    assert heavy_in(modules) == []


def test_help_lists_every_command_with_its_help_and_imports_none(tmp_path: Path) -> None:
    proc, modules = run_lamina(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert command_modules(modules) == []
    assert heavy_in(modules) == []
    # argparse wraps the help column; compare word sequences per command
    listing = proc.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    entries = re.split(r"\n    (?=\S)", listing)
    shown = {}
    for entry in entries[1:]:
        name, _, text = entry.strip().partition(" ")
        shown[name] = " ".join(text.split())
    assert shown == COMMANDS


def test_command_help_imports_that_command_only(tmp_path: Path) -> None:
    proc, modules = run_lamina(tmp_path, "plan", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: lamina plan ")
    assert "--against REGISTRY/NAMESPACE" in proc.stdout
    assert command_modules(modules) == ["lamina.commands.plan"]
    # the plan's own modules read YAML (libyaml); nothing else heavy describes it
    assert {m.split(".")[0] for m in heavy_in(modules)} <= {"yaml"}


def test_global_options_are_parsed_before_the_command_is_chosen(tmp_path: Path) -> None:
    # abbreviated and joined forms of -C/--project still find the command
    tree = tmp_path / "tiny"
    shutil.copytree(TREES / "tiny", tree, ignore=shutil.ignore_patterns(".lamina"))
    for args in (["-C", str(tree), "render", "--help"], [f"-C{tree}", "render", "--help"],
                 [f"--proj={tree}", "render", "--help"]):
        proc, modules = run_lamina(tmp_path, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout.startswith("usage: lamina render "), args
        assert command_modules(modules) == ["lamina.commands.render"], args


def test_unknown_command_is_refused_with_the_list_and_nothing_imported(tmp_path: Path) -> None:
    proc, modules = run_lamina(tmp_path, "bogus")
    assert proc.returncode == 2
    choices = ", ".join(f"'{name}'" for name in COMMANDS)
    assert proc.stderr.splitlines()[-1] == (
        f"lamina: error: argument COMMAND: invalid choice: 'bogus' (choose from {choices})")
    assert command_modules(modules) == []


def test_plan_reads_and_checks_a_tree_without_jsonschema_or_http(tmp_path: Path) -> None:
    tree = tmp_path / "tiny"
    shutil.copytree(TREES / "tiny", tree, ignore=shutil.ignore_patterns(".lamina"))
    proc, modules = run_lamina(tmp_path, "plan", "--json", cwd=tree)
    assert proc.returncode == 0, proc.stderr
    statuses = {(e["image"], e["status"]) for e in json.loads(proc.stdout)}
    assert statuses and {status for _, status in statuses} == {"build"}
    assert command_modules(modules) == ["lamina.commands.plan"]
    # plain recipe files are read by libyaml: not even ruamel is imported
    assert {m.split(".")[0] for m in heavy_in(modules)} == {"yaml"}
    # the table needs rich, nothing more
    proc, modules = run_lamina(tmp_path, "plan", cwd=tree)
    assert proc.returncode == 0, proc.stderr
    assert {m.split(".")[0] for m in heavy_in(modules)} == {"yaml", "rich"}


def test_the_command_table_names_every_command_module_and_its_help() -> None:
    found = sorted(info.name for info in pkgutil.iter_modules(lamina.commands.__path__)
                   if not info.name.startswith("_"))
    assert found == sorted(COMMANDS)
    for name, summary in COMMANDS.items():
        parser = argparse.ArgumentParser(prog="lamina")
        subparsers = parser.add_subparsers(dest="command")
        importlib.import_module(module_name(name)).register(subparsers)
        assert list(subparsers.choices) == [name]
        [action] = subparsers._choices_actions
        assert (action.dest, action.help) == (name, summary)
