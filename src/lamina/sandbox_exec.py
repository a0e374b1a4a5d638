"""``lamina exec`` / ``lamina run``: a command in an unpacked image, as apptainer runs it.

What an analyst gets from ``apptainer exec /cvmfs/unpacked.cern.ch/…`` is what this gives,
with bubblewrap instead of apptainer's starter (the pieces, and the apptainer source each
follows, are in :mod:`lamina.sandbox`):

* the environment cleaned, the image's ``/.singularity.d/env/*.sh`` sourced in order, the
  ``APPTAINERENV_``/``SINGULARITYENV_`` overrides injected, then the host variables the image
  did not set restored (the image's ENV wins; ``LD_LIBRARY_PATH``, ``PATH`` and ``HOME`` of
  the host never pass) — :mod:`~lamina.sandbox.environ`, :mod:`~lamina.sandbox.action`;
* the host's ``$HOME``, ``/tmp``, ``/var/tmp``, ``/proc``, ``/sys``, ``/dev``, ``/etc/hosts``,
  ``/etc/localtime``, ``/etc/resolv.conf``, a passwd/group with the user, the current
  directory, and ``--bind``s, over a read-only image root, with mount points the image lacks
  created in a tmpfs scaffold (apptainer's underlay) — :mod:`~lamina.sandbox.mounts`,
  :mod:`~lamina.sandbox.underlay`;
* the working directory is the host's current one (``--pwd`` overrides it, ``--contain`` uses
  the home), never the image's ``WorkingDir``, which apptainer ignores;
* ``--cleanenv``, ``--contain``, ``--containall`` (contain + clean environment + PID and IPC
  namespaces), ``--no-home``.

The image's ``/bin/sh`` runs the action script (apptainer has a shell built in): an image
without one is refused. The command's exit status is returned, 128+N for a signal N.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from lamina.errors import LaminaError, ToolError, UsageError
from lamina.sandbox.action import ACTIONS, SCRIPT, launch_env
from lamina.sandbox.bindspec import env_bind_values, parse_binds
from lamina.sandbox.environ import container_env, image_path
from lamina.sandbox.mounts import Host, Options, place
from lamina.sandbox.underlay import Underlay


@dataclass(frozen=True)
class RunOptions:
    """The apptainer options ``lamina exec`` and ``lamina run`` take."""
    binds: list[str] = field(default_factory=list)
    clean_env: bool = False
    contain: bool = False
    containall: bool = False
    no_home: bool = False
    pwd: str | None = None
    timeout: float | None = None  # lamina's own; None: the command runs as long as it runs


def go_getwd() -> str:
    """Go's ``os.Getwd``, which apptainer uses: ``$PWD`` when it names the current directory;
    ``""`` when there is none (a removed directory: apptainer warns and mounts no cwd)."""
    pwd_env = os.environ.get("PWD", "")
    try:
        if pwd_env.startswith("/") and os.path.samefile(pwd_env, "."):
            return pwd_env
        return os.getcwd()
    except OSError:
        return ""


def host_facts(cwd: str) -> Host:
    """The user's home from the passwd entry (apptainer's ``CurrentUser.HomeDir``), mounted at
    ``/root`` for uid 0 (``getHomePaths``)."""
    uid = os.getuid()
    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        home = "/root" if uid == 0 else "/"
    return Host(uid, home, "/root" if uid == 0 else home, cwd)


def _rootfs(directory: Path) -> Path:
    rootfs = directory.resolve()
    if not rootfs.is_dir():
        raise UsageError(f"{directory} is not a directory (unpack an image first: "
                         "lamina unpack REF DIR)")
    return rootfs


def _launch(action: str, directory: Path, args: Sequence[str], options: RunOptions,
            warn: Callable[[str], None]) -> int:
    rootfs = _rootfs(directory)
    cwd = go_getwd()
    underlay = Underlay(rootfs)
    shell = underlay.locate("/bin/sh")
    if not shell.exists or shell.is_dir:
        raise UsageError(f"{directory} has no /bin/sh: lamina runs apptainer's action script "
                         "(clean the environment, source /.singularity.d/env) with the image's "
                         "shell")
    binds = parse_binds([*options.binds, *env_bind_values(os.environ)], cwd)
    host = host_facts(cwd)
    place(underlay, Options(binds, options.contain, options.containall, options.no_home),
          host, warn)
    contained = options.contain or options.containall
    env = container_env(os.environ, container=image_path(str(directory), cwd),
                        bind_dests=[b.destination for b in binds], home=host.home_dest,
                        clean=options.clean_env or options.containall, command=action)
    target = options.pwd or (host.home_dest if contained else cwd)
    start = launch_env(env, cwd=target, custom_cwd=options.pwd is not None)
    for message in env.warnings:
        warn(message)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise ToolError("bwrap not found (run scripts/setup, or install bubblewrap)")
    with ExitStack() as stack:
        fds: list[int] = []

        def data_fd(data: bytes) -> int:
            handle = stack.enter_context(tempfile.TemporaryFile())
            handle.write(data)
            handle.flush()
            handle.seek(0)
            fds.append(handle.fileno())
            return handle.fileno()

        mounts = underlay.bwrap_args(data_fd)
        namespaces = ["--unshare-pid", "--unshare-ipc"] if options.containall else []
        cmd = [bwrap, *namespaces, *mounts, "--die-with-parent", "--chdir", "/", "--",
               "/bin/sh", "-c", SCRIPT, ACTIONS[action], *args]
        code = _wait_for(subprocess.Popen(cmd, env=start, pass_fds=fds), options.timeout,
                         args[0] if args else action)
    return code if code >= 0 else 128 - code


class ExecTimeout(LaminaError):
    """The command outlived ``--timeout``; the exit code is coreutils timeout's."""

    exit_code = 124


def _wait_for(proc: subprocess.Popen[bytes], timeout: float | None, what: str) -> int:
    """The command's status. A Ctrl-C is the command's to handle (it gets the terminal's
    SIGINT itself), as apptainer's starter passes signals on (process_linux.go): lamina must
    not die of it and take the command down. ``timeout`` (``--timeout``, lamina's own:
    apptainer has none) kills bwrap, and with ``--die-with-parent`` everything inside."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ExecTimeout(f"{what!r} was still running after {timeout:g} s (--timeout); "
                              "it was killed") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def exec_in(directory: Path, command: list[str], options: RunOptions | None = None, *,
            warn: Callable[[str], None] = lambda message: None) -> int:
    """``apptainer exec DIR CMD…``."""
    if not command:
        raise UsageError("no command given: lamina exec DIR [--] CMD [ARGS...]")
    return _launch("exec", directory, command, options or RunOptions(), warn)


def run_in(directory: Path, args: list[str], options: RunOptions | None = None, *,
           warn: Callable[[str], None] = lambda message: None) -> int:
    """``apptainer run DIR [ARGS…]``: the image's ``/.singularity.d/runscript``."""
    return _launch("run", directory, args, options or RunOptions(), warn)
