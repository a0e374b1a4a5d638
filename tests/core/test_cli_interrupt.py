"""Ctrl-C at any moment, start-up included, and a reader that goes away: one line, exit 130
(or 141 for a broken pipe), no traceback from lamina, no temporary files left.

The console script is run for real (``.venv/bin/lamina``, which imports ``lamina.entry``) and
SIGINT is sent after delays from 0 to past its start-up time. What a user may see, by when the
signal lands:

* before Python installed its SIGINT handler: the process dies of the signal (a shell reports
  130), silently;
* in Python's own start-up, before the first line of lamina runs (the interpreter's ``site``
  and ``.pth`` processing, finding ``lamina.entry``): whatever Python prints there. That window
  is the interpreter's (a few tens of milliseconds), and the traceback names no lamina source;
* from then on: exactly ``lamina: interrupted; rerun the same command to resume``, exit 130;
* after the command finished: its normal output and exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

LAMINA = str(Path(sys.executable).with_name("lamina"))
SRC = str(Path(__file__).resolve().parents[2] / "src" / "lamina")
INTERRUPTED = "lamina: interrupted; rerun the same command to resume\n"


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name]


def environment(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(LAMINA_STATE=str(project / ".lamina"), LAMINA_STORE=str(project / "store"))
    env.pop("LAMINA_TRACEBACK", None)
    return env


def start_up_seconds(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([LAMINA, *args], cwd=cwd, env=env, capture_output=True, timeout=120,
                   check=True)
    return time.monotonic() - started


def interrupted_at(args: list[str], delay: float, cwd: Path, env: dict[str, str]
                   ) -> tuple[int, str, str]:
    proc = subprocess.Popen([LAMINA, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def judge(code: int, out: str, err: str, completed: Callable[[str], bool]) -> str:
    if code == 130 and err == INTERRUPTED:
        return "interrupted"
    if code == 0 and err == "" and completed(out):
        return "completed"
    if code == -signal.SIGINT and err == "":
        return "before Python's handler"
    # the interpreter's own start-up: no frame of lamina's code, nothing printed by lamina
    assert SRC not in err and "lamina:" not in err, (code, err)
    assert "<frozen" in err or "Fatal Python error" in err or "bin/lamina" in err, (code, err)
    return "Python start-up"


@pytest.mark.parametrize(("args", "completed"), [
    (["--version"], lambda out: out == "lamina 0.1.0\n"),
    (["plan"], lambda out: "tiny" in out or "base" in out),
])
def test_ctrl_c_at_any_moment(tree: Callable[[str], Path], args: list[str],
                              completed: Callable[[str], bool]) -> None:
    project = tree("tiny")
    env = environment(project)
    total = start_up_seconds(args, project, env)
    delays = [0.0, 0.01, 0.05] + [total * step / 8 for step in range(1, 11)]
    seen: dict[str, int] = {}
    for delay in delays:
        code, out, err = interrupted_at(args, delay, project, env)
        outcome = judge(code, out, err, completed)
        seen[outcome] = seen.get(outcome, 0) + 1
        assert temp_files(project) == [], (delay, temp_files(project))
    # the lamina windows were hit, start-up (imports) included: delays up to `total` are
    # before the command's end, and the last ones are after it
    assert seen.get("interrupted", 0) >= 4, seen
    assert seen.get("Python start-up", 0) <= 2, seen


def test_a_closed_output_pipe_is_one_line_and_exit_141(tree: Callable[[str], Path]) -> None:
    """(argparse's own --help and --version ignore a closed pipe and exit 0: its choice.)"""
    project = tree("tiny")
    env = environment(project)
    for args in (["plan"], ["plan", "--json"]):
        proc = subprocess.Popen([LAMINA, *args], cwd=project, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before anything was written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141, err
        assert err == "lamina: error: the output pipe was closed before all output was written\n"


def test_python_dash_m_lamina_is_the_same_entry_point(tree: Callable[[str], Path]) -> None:
    result = subprocess.run([sys.executable, "-m", "lamina", "--version"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "lamina 0.1.0\n"
