"""Peak resident memory of a command, measured so that the test runner's own size cannot leak in.

Linux keeps ``ru_maxrss`` across ``exec`` as the high-water mark of every address space the
process had, and a child forked (or vforked) from pytest starts with pytest's: after a few
hundred tests that is 300 MB before the command has done anything. So the command is started
from a fresh, small Python whose only child it is, and that parent reports
``RUSAGE_CHILDREN.ru_maxrss`` (see getrusage(2): the largest child's peak).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

_PROBE = """\
import resource, subprocess, sys
try:
    proc = subprocess.run(sys.argv[2:], capture_output=True, timeout=float(sys.argv[1]))
except subprocess.TimeoutExpired:
    sys.exit(99)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stdout.buffer.write(b"%d %d\\n" % (proc.returncode, peak) + proc.stderr)
"""


@dataclass(frozen=True)
class Measured:
    code: int
    err: str
    peak_kib: int


def run_measured(cmd: list[str], timeout: float = 60) -> Measured:
    """Run ``cmd`` (killed after ``timeout`` seconds) and return its exit code, its stderr
    and its peak RSS in KiB."""
    probe = subprocess.run([sys.executable, "-c", _PROBE, str(timeout), *cmd],
                           capture_output=True, timeout=timeout + 30)
    if probe.returncode == 99:
        raise AssertionError(f"{cmd} still running after {timeout}s")
    head, _, err = probe.stdout.partition(b"\n")
    code, peak = head.split()
    return Measured(int(code), err.decode(errors="replace"), int(peak))
