"""Test harness, loaded into a ``lamina`` child process through PYTHONPATH: stop it at an
exact point, seen through Python's audit events (PEP 578, ``sys.addaudithook``), without
changing or wrapping anything in lamina.

``LAMINA_TEST_FAULT=<action>:<event>:<needle>``: when audit event ``<event>`` fires with
``<needle>`` in its subject (the destination of ``os.rename``/``os.replace``, the command
line of ``subprocess.Popen``), ``kill`` SIGKILLs the process group (lamina and the tools it
runs, as an OOM kill or a power cut would), and ``pause`` creates the file named by
``LAMINA_TEST_PAUSED`` and waits until ``<that file>.go`` exists (at most 120 s).

``LAMINA_TEST_EXECS=<file>``: append the argv of every ``subprocess.Popen`` the process
starts to ``<file>``, one JSON list a line, so a test sees which tools lamina ran and how
often (every tool lamina runs goes through ``subprocess``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

_SPEC = os.environ.get("LAMINA_TEST_FAULT", "")


def _subject(event: str, args: tuple[Any, ...]) -> str:
    if event == "os.rename":
        return os.fsdecode(args[1])
    if event == "subprocess.Popen":
        return " ".join(os.fsdecode(a) if isinstance(a, (str, bytes)) else str(a)
                        for a in (args[1] if isinstance(args[1], (list, tuple)) else [args[1]]))
    return repr(args)


def _install(spec: str) -> None:
    action, event, needle = spec.split(":", 2)
    fired = []

    def hook(name: str, args: tuple[Any, ...]) -> None:
        if name != event or fired or needle not in _subject(name, args):
            return
        fired.append(True)
        if action == "kill":
            os.killpg(os.getpgrp(), signal.SIGKILL)
        elif action == "pause":
            marker = os.environ["LAMINA_TEST_PAUSED"]
            with open(marker, "w"):
                pass
            deadline = time.monotonic() + 120
            while not os.path.exists(marker + ".go") and time.monotonic() < deadline:
                time.sleep(0.05)

    sys.addaudithook(hook)


def _record(path: str) -> None:
    def hook(name: str, args: tuple[Any, ...]) -> None:
        if name != "subprocess.Popen":
            return
        argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        line = json.dumps([os.fsdecode(a) if isinstance(a, (str, bytes)) else str(a)
                           for a in argv])
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    sys.addaudithook(hook)


if _SPEC:
    _install(_SPEC)
if os.environ.get("LAMINA_TEST_EXECS"):
    _record(os.environ["LAMINA_TEST_EXECS"])
