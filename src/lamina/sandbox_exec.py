"""Running a command in an unpacked image the way ``singularity exec`` would, via bubblewrap.

The rootfs is bound read-only at ``/`` (it is read-only on CVMFS too), with a fresh ``/proc``,
a minimal ``/dev`` and the host's ``/tmp``; ``--bind SRC[:DST]`` adds more (DST must exist in
the image: a read-only root cannot grow mount points). The image's ``Env`` is applied with the
unpacker's rule from ``10-docker2singularity.sh``: a variable already set on the host wins,
except ``PATH``, which the image sets (or a standard default when it has none). As with
Singularity the host environment passes through unless ``clean_env``. The working directory is
the image's ``WorkingDir`` (``/`` when unset) unless given. The command's exit status is
returned (128+N for a signal).

Env and WorkingDir come from lamina's record beside the flat (``R/.lamina/flats/<c>.json``);
for a tree without one, Env is read back from ``/.singularity.d/env/10-docker2singularity.sh``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import LaminaError, ToolError, UsageError
from lamina.jsondoc import MiB, read_bytes
from lamina.unpack.layout import read_record
from lamina.unpack.singularity import ENV_SCRIPT, parse_env_script

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ENV_SCRIPT_LIMIT = 4 * MiB


@dataclass(frozen=True)
class ImageRuntime:
    env: list[str]
    workdir: str


def image_runtime(rootfs: Path) -> ImageRuntime:
    record = read_record(rootfs)
    if record is not None:
        config = record.get("config")
        cfg = config.get("config") if isinstance(config, dict) else None
        if isinstance(cfg, dict):
            env = cfg.get("Env")
            workdir = cfg.get("WorkingDir")
            return ImageRuntime([e for e in env if isinstance(e, str)]
                                if isinstance(env, list) else [],
                                workdir if isinstance(workdir, str) and workdir else "/")
    script = rootfs / ENV_SCRIPT
    if script.is_file() and not script.is_symlink():
        try:
            text = read_bytes(script, limit=ENV_SCRIPT_LIMIT).decode(errors="replace")
        except LaminaError:
            text = ""
        return ImageRuntime(parse_env_script(text), "/")
    return ImageRuntime([], "/")


def container_env(image_env: list[str], host: Mapping[str, str], clean: bool) -> dict[str, str]:
    env = {} if clean else dict(host)
    if clean and "TERM" in host:
        env["TERM"] = host["TERM"]
    has_path = False
    for element in image_env:
        key, sep, value = element.partition("=")
        if key == "PATH" and sep:
            env["PATH"] = value
            has_path = True
        elif not env.get(key):
            env[key] = value
    if not has_path:
        env["PATH"] = DEFAULT_PATH
    return env


def parse_bind(text: str) -> tuple[Path, str]:
    src, _, dst = text.partition(":")
    dst = dst or src
    if not src or not os.path.isabs(dst):
        raise UsageError(f"--bind {text!r}: expected SRC[:DST] with an absolute DST")
    source = Path(src).resolve()
    if not source.exists():
        raise UsageError(f"--bind {text!r}: {source} does not exist")
    return source, dst


def bwrap_command(rootfs: Path, command: list[str], binds: list[tuple[Path, str]],
                  workdir: str) -> list[str]:
    cmd = ["bwrap", "--ro-bind", str(rootfs), "/", "--proc", "/proc", "--dev", "/dev",
           "--bind", "/tmp", "/tmp"]
    for source, dst in binds:
        cmd += ["--bind", str(source), dst]
    return [*cmd, "--die-with-parent", "--chdir", workdir, "--", *command]


class ExecTimeout(LaminaError):
    """The command outlived ``--timeout``; the exit code is coreutils timeout's."""

    exit_code = 124


def exec_in(directory: Path, command: list[str], *, binds: list[str] | None = None,
            clean_env: bool = False, workdir: str | None = None,
            timeout: float | None = None) -> int:
    """Run ``command``; ``timeout`` None lets it run as long as it runs, as ``singularity
    exec`` does: it is the user's own foreground program (a shell, an analysis)."""
    if not command:
        raise UsageError("no command given: lamina exec DIR -- CMD [ARGS...]")
    rootfs = directory.resolve()
    if not rootfs.is_dir():
        raise UsageError(f"{directory} is not a directory (unpack an image first: "
                         "lamina unpack REF DIR)")
    for needed in ("proc", "dev", "tmp"):
        if not (rootfs / needed).is_dir():
            raise UsageError(f"{directory} has no /{needed}: not an unpacked image "
                             "(lamina unpack creates it)")
    parsed = [parse_bind(b) for b in binds or []]
    for _, dst in parsed:
        if not os.path.lexists(rootfs / dst.lstrip("/")):
            raise UsageError(f"--bind destination {dst} does not exist in the image (its root "
                             "is read-only, as on CVMFS)")
    runtime = image_runtime(rootfs)
    env = container_env(runtime.env, os.environ, clean_env)
    for key, value in env.items():
        if "\x00" in key or "\x00" in value or "=" in key:
            raise UsageError(f"the image's environment variable {key[:60]!r} cannot be passed "
                             "to a process (a NUL byte, or '=' in its name)")
    cmd = bwrap_command(rootfs, command, parsed, workdir or runtime.workdir)
    try:
        # --die-with-parent: killing bwrap on a timeout ends everything inside too
        proc = subprocess.run(cmd, env=env, check=False, timeout=timeout)
    except FileNotFoundError:
        raise ToolError("bwrap not found (run scripts/setup, or install bubblewrap)") from None
    except subprocess.TimeoutExpired:
        raise ExecTimeout(f"{command[0]!r} was still running after {timeout:g} s (--timeout); "
                          "it was killed") from None
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
