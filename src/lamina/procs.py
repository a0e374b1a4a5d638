"""Running the field's tools: buildah, skopeo, umoci, debootstrap.

Output goes to a per-node log file (the summary points at it); only a short tail reaches
the error message, and it is passed through :func:`lamina.redact.redact` first so that
a credential echoed by a tool never reaches the terminal.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lamina.errors import ToolError
from lamina.redact import redact


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    # The command lines lamina wrote itself say nothing the message does not already say.
    useful = [line.strip() for line in text if line.strip() and not line.startswith("$ ")]
    return " | ".join(useful[-lines:])[-400:]


DEFAULT_TIMEOUT = 3600.0  # seconds; a bound for a hung tool, not a performance target


def run_logged(cmd: Sequence[str], log: Path, *, what: str, cwd: Path | None = None,
               env: Mapping[str, str] | None = None, input_bytes: bytes | None = None,
               timeout: float = DEFAULT_TIMEOUT, umask: int = -1,
               stdout: Path | None = None) -> None:
    """Run ``cmd`` appending its output to ``log``; raise :class:`ToolError` on failure or
    when it runs longer than ``timeout`` seconds (it is killed then). ``umask`` (when not
    -1) is the tool's own, for tools that create files of an image; ``stdout`` receives
    the standard output instead of the log (stderr still goes to the log)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with log.open("ab") as handle, (stdout.open("wb") if stdout else handle) as out:
        handle.write(f"\n$ {redact(' '.join(cmd))}\n".encode())
        handle.flush()
        try:
            proc = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT
                                  if stdout is None else handle, cwd=cwd, env=full_env,
                                  input=input_bytes, check=False, timeout=timeout,
                                  umask=umask)
        except FileNotFoundError as exc:
            raise ToolError(f"{what}: {cmd[0]} not found (run scripts/setup)") from exc
        except subprocess.TimeoutExpired:
            handle.write(f"\nlamina: timed out after {timeout:.0f}s\n".encode())
            raise ToolError(f"{what} timed out after {timeout:.0f}s [log: {log}]") from None
    if proc.returncode != 0:
        raise ToolError(f"{what} failed (exit {proc.returncode}): {redact(tail(log))} "
                        f"[log: {log}]")


LOGRUS_MSG = re.compile(r'level=(?:fatal|error) msg="((?:[^"\\]|\\.)*)"')


def tool_message(stderr: str) -> str:
    """The human part of a Go tool's last error line (skopeo and buildah log via logrus)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    match = LOGRUS_MSG.search(lines[-1])
    if match:
        return match[1].replace('\\"', '"')
    return lines[-1].strip()


def capture(cmd: Sequence[str], *, what: str, env: Mapping[str, str] | None = None,
            check: bool = True, timeout: float = DEFAULT_TIMEOUT
            ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=full_env,
                              check=False, timeout=timeout)
    except FileNotFoundError as exc:
        raise ToolError(f"{what}: {cmd[0]} not found (run scripts/setup)") from exc
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what} timed out after {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        message = redact(tool_message(proc.stderr))
        raise ToolError(f"{what} failed (exit {proc.returncode}): {message}")
    return proc
