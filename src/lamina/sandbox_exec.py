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

from lamina.errors import ToolError, UsageError
from lamina.unpack.layout import read_record
from lamina.unpack.singularity import ENV_SCRIPT, parse_env_script

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ImageRuntime:
    env: list[str]
    workdir: str


def image_runtime(rootfs: Path) -> ImageRuntime:
    record = read_record(rootfs)
    if record is not None:
        cfg = (record.get("config") or {}).get("config") or {}
        env = [e for e in cfg.get("Env") or [] if isinstance(e, str)]
        return ImageRuntime(env, str(cfg.get("WorkingDir") or "/"))
    script = rootfs / ENV_SCRIPT
    if script.is_file() and not script.is_symlink():
        return ImageRuntime(parse_env_script(script.read_text(errors="replace")), "/")
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


def exec_in(directory: Path, command: list[str], *, binds: list[str] | None = None,
            clean_env: bool = False, workdir: str | None = None) -> int:
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
    cmd = bwrap_command(rootfs, command, parsed, workdir or runtime.workdir)
    try:
        proc = subprocess.run(cmd, env=env, check=False)
    except FileNotFoundError:
        raise ToolError("bwrap not found (run scripts/setup, or install bubblewrap)") from None
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
