"""``lamina exec`` / ``lamina run`` as an analyst calls them: a real process (real bubblewrap
inside), a chosen environment and working directory, and a timeout on every call."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool
from tests.exec.images import busybox_entries, unpacked

TIMEOUT = 60
Lamina = Callable[..., CliResult]
IMAGE_ENV = ["PATH=/opt/bin:/usr/bin", "HELLO=image", "LANG=C.UTF-8"]


def run_lamina(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
               ) -> CliResult:
    """``lamina ARGS`` in ``cwd`` (PWD set as a shell sets it) with only ``env`` plus the
    host PATH (to find bwrap)."""
    where = str(cwd or Path.cwd())
    full = {"PATH": os.environ["PATH"], "PWD": where, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "lamina.cli", *args], capture_output=True,
                          text=True, env=full, cwd=where, timeout=TIMEOUT, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox image with ENV (PATH, HELLO, LANG), WORKDIR /opt, an ENTRYPOINT and CMD,
    and a resolv.conf and hosts of its own; returned as its public path."""
    require_tool("bwrap")
    from tests.unpack.oci import d, f

    extra = [d("opt"), f("etc/resolv.conf", "nameserver 192.0.2.53\n"),
             f("etc/hosts", "192.0.2.1 image-only\n")]
    return unpacked(tmp_path_factory.mktemp("exec"), busybox_entries(extra), env=IMAGE_ENV,
                    entrypoint=["/bin/echo", "entry"], cmd=["default", "cmd"], workdir="/opt")


@pytest.fixture
def lamina() -> Lamina:
    return run_lamina
