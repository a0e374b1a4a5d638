"""Running ``lamina`` as a real child process: killable, bounded, optionally with a fault.

The fault harness (``tests/core/faults/sitecustomize.py``) stops the child at an exact point
through Python's audit events; nothing in lamina is changed for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

FAULTS = Path(__file__).resolve().parent / "faults"
LAMINA = str(Path(sys.executable).with_name("lamina"))


def child_env(fault: str | None = None, paused: Path | None = None,
              execs: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMINA_TEST_")}
    if fault is not None or execs is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")])
    if fault is not None:
        env["LAMINA_TEST_FAULT"] = fault
    if execs is not None:
        env["LAMINA_TEST_EXECS"] = str(execs)
    if paused is not None:
        env["LAMINA_TEST_PAUSED"] = str(paused)
    env.update(extra)
    return env


def start(*args: str, fault: str | None = None, paused: Path | None = None,
          execs: Path | None = None, **extra: str) -> subprocess.Popen[str]:
    """``lamina ARGS`` in its own process group (so a kill takes its tools with it); with
    ``execs``, every command it starts is recorded there (see faults/sitecustomize.py)."""
    return subprocess.Popen([LAMINA, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env=child_env(fault, paused, execs, **extra))


def finish(process: subprocess.Popen[str], timeout: float = 600
           ) -> tuple[int, str, str]:
    """Wait for ``process``; on timeout kill its group and fail."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"lamina did not finish within {timeout}s") from None
    return process.returncode, out, err


def run(*args: str, fault: str | None = None, timeout: float = 600,
        execs: Path | None = None, **extra: str) -> tuple[int, str, str]:
    return finish(start(*args, fault=fault, execs=execs, **extra), timeout)
