"""The ``/.singularity.d`` metadata the unpacker injects into every flat image.

Apptainer/Singularity run a plain directory as a sandbox and take the image's environment only
from ``/.singularity.d/env/*.sh``: without ``10-docker2singularity.sh`` every Dockerfile ``ENV``
is lost. What is written here follows DUCC's 2026 overlay code (notes/cvmfs-unpacked.md §3):

* ``env/10-docker2singularity.sh`` and ``runscript`` are generated with the unpacker's exact
  quoting (:func:`env_script`, :func:`runscript`), so what analysts see on CVMFS is what they
  see here — including its quirk that a single quote in Entrypoint/Cmd is not escaped;
* the fixed scripts (actions, 01/90/91/95/99 env files, startscript) do what DUCC's do (source
  ``env/*.sh`` in order, then exec / run the runscript / start a shell) but are written here,
  not copied, so their bytes differ;
* files are mode 0755, directories 0755; ``.singularity.d``, ``actions``, ``env`` and ``libs``
  replace whatever the image had at those paths (files the image put inside them stay);
* the FHS directories ``dev proc root var var/tmp tmp etc sys home`` and the symlinks
  ``singularity .run .exec .shell .test environment`` are created only when absent (a symlink
  counts as present, whatever it points at);
* unlike the old Go code, ``/etc/hosts`` and ``/etc/resolv.conf`` are left alone (the runtime
  binds the host's copies).
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any

from lamina.unpack.rootfs import RootFS

SOURCE_ENV = """for script in /.singularity.d/env/*.sh; do
    if [ -f "$script" ]; then
        . "$script"
    fi
done
"""

ACTIONS = {
    "exec": "#!/bin/sh\n" + SOURCE_ENV + 'exec "$@"\n',
    "run": "#!/bin/sh\n" + SOURCE_ENV + """if test -n "${SINGULARITY_APPNAME:-}"; then
    app="/scif/apps/${SINGULARITY_APPNAME}/scif/runscript"
    if test -x "$app"; then
        exec "$app" "$@"
    fi
    echo "No Singularity runscript for contained app: ${SINGULARITY_APPNAME}"
    exit 1
elif test -x /.singularity.d/runscript; then
    exec /.singularity.d/runscript "$@"
fi
echo "No Singularity runscript found, executing /bin/sh"
exec /bin/sh "$@"
""",
    "shell": "#!/bin/sh\n" + SOURCE_ENV + """shell="${SINGULARITY_SHELL:-}"
if test -n "$shell" -a -x "$shell"; then
    exec $SINGULARITY_SHELL "$@"
elif test -x /bin/bash; then
    SHELL=/bin/bash
    PS1="Singularity ${SINGULARITY_NAME:-}:\\\\w> "
    export SHELL PS1
    exec /bin/bash --norc "$@"
elif test -x /bin/sh; then
    SHELL=/bin/sh
    export SHELL
    exec /bin/sh "$@"
fi
echo "ERROR: no shell found in the container" 1>&2
exit 1
""",
    "start": "#!/bin/sh\n# tell the instance's PID 1 to go on\nkill -CONT 1\n" + SOURCE_ENV
    + """if test -x /.singularity.d/startscript; then
    exec /.singularity.d/startscript
fi
""",
    "test": "#!/bin/sh\n" + SOURCE_ENV + """if test -n "${SINGULARITY_APPNAME:-}"; then
    app="/scif/apps/${SINGULARITY_APPNAME}/scif/test"
    if test -x "$app"; then
        exec "$app" "$@"
    fi
    echo "No tests for contained app: ${SINGULARITY_APPNAME}"
    exit 1
elif test -x /.singularity.d/test; then
    exec /.singularity.d/test "$@"
fi
echo "No test found in container, executing /bin/sh -c true"
exec /bin/sh -c true
""",
}

ENV_FILES = {
    "01-base.sh": "#!/bin/sh\n# base environment (intentionally empty)\n",
    "90-environment.sh": "#!/bin/sh\n# Custom environment shell code should follow\n",
    "91-environment.sh": "#!/bin/sh\n# Custom environment shell code should follow\n",
    "95-apps.sh": """#!/bin/sh
# SCIF apps: put the active app's bin and lib first and source its environment
if test -n "${SINGULARITY_APPNAME:-}"; then
    export SINGULARITY_APPNAME
    base="/scif/apps/${SINGULARITY_APPNAME}"
    if test -d "$base/"; then
        SCIF_APPS=/scif/apps
        SCIF_APPROOT="$base"
        export SCIF_APPROOT SCIF_APPS
        PATH="$base:$PATH"
        if test -d "$base/bin"; then
            PATH="$base/bin:$PATH"
        fi
        if test -d "$base/lib"; then
            LD_LIBRARY_PATH="$base/lib:${LD_LIBRARY_PATH:-}"
            export LD_LIBRARY_PATH
        fi
        for f in "$base/scif/env/01-base.sh" "$base/scif/env/90-environment.sh"; do
            if [ -f "$f" ]; then
                . "$f"
            fi
        done
        export PATH
    else
        echo "Could not locate the container application: ${SINGULARITY_APPNAME}"
        exit 1
    fi
fi
""",
    "99-base.sh": """#!/bin/sh
if [ -z "${LD_LIBRARY_PATH:-}" ]; then
    LD_LIBRARY_PATH=/.singularity.d/libs
else
    LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/.singularity.d/libs"
fi
PS1="Singularity> "
export LD_LIBRARY_PATH PS1
""",
    "99-runtimevars.sh": """#!/bin/sh
if [ -n "${SING_USER_DEFINED_PREPEND_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
fi
if [ -n "${SING_USER_DEFINED_APPEND_PATH:-}" ]; then
    PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
fi
if [ -n "${SING_USER_DEFINED_PATH:-}" ]; then
    PATH="${SING_USER_DEFINED_PATH}"
fi
unset SING_USER_DEFINED_PREPEND_PATH SING_USER_DEFINED_APPEND_PATH SING_USER_DEFINED_PATH
export PATH
""",
}

STARTSCRIPT = "#!/bin/sh\n"
FHS_DIRS = ("dev", "proc", "root", "var", "var/tmp", "tmp", "etc", "sys", "home")
SYMLINKS = {
    "singularity": ".singularity.d/runscript",
    ".run": ".singularity.d/actions/run",
    ".shell": ".singularity.d/actions/shell",
    ".exec": ".singularity.d/actions/exec",
    ".test": ".singularity.d/actions/test",
    "environment": ".singularity.d/env/90-environment.sh",
}
ENV_SCRIPT = ".singularity.d/env/10-docker2singularity.sh"


def shell_escape(value: str) -> str:
    """The unpacker's escaping for a double-quoted shell word: backslash, ``"``, backtick, ``$``."""
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`")
            .replace("$", "\\$"))


def shell_unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in '\\"`$':
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def args_quoted(args: list[str]) -> str:
    return " ".join(f'"{shell_escape(a)}"' for a in args)


def env_script(env: list[str]) -> str:
    """``10-docker2singularity.sh``: the image's ``Env``; a value already set when it is
    sourced wins, except for PATH (apptainer clears the host's first: lamina.sandbox.action)."""
    lines = ["#!/bin/sh\n"]
    for element in env:
        key, sep, value = element.partition("=")
        if not sep:
            lines.append(f'export {element}="${{{element}:-}}"\n')
        elif key == "PATH":
            lines.append(f'export PATH="{shell_escape(value)}"\n')
        else:
            lines.append(f'export {key}="${{{key}:-"{shell_escape(value)}"}}"\n')
    return "".join(lines)


def parse_env_script(text: str) -> list[str]:
    """The ``Env`` list back from :func:`env_script`'s output."""
    env = []
    for line in text.splitlines():
        if not line.startswith("export ") or "=" not in line:
            continue
        key, _, rest = line[len("export "):].partition("=")
        if key == "PATH" and rest.startswith('"') and rest.endswith('"'):
            env.append(f"PATH={shell_unescape(rest[1:-1])}")
        elif rest == f'"${{{key}:-}}"':
            env.append(key)
        elif rest.startswith(f'"${{{key}:-"') and rest.endswith('"}"'):
            env.append(f"{key}={shell_unescape(rest[len(key) + 6:-3])}")
    return env


def runscript(entrypoint: list[str], cmd: list[str]) -> str:
    """``runscript`` from Entrypoint and Cmd, as docker2singularity and DUCC write it."""
    oci_entrypoint = args_quoted(entrypoint)
    oci_cmd = args_quoted(cmd)
    return f"""#!/bin/sh
OCI_ENTRYPOINT='{oci_entrypoint}'
OCI_CMD='{oci_cmd}'
CMDLINE_ARGS=""
# prepare command line arguments for evaluation
for arg in "$@"; do
    CMDLINE_ARGS="${{CMDLINE_ARGS}} \\"$arg\\""
done
# ENTRYPOINT only - run entrypoint plus args
if [ -z "$OCI_CMD" ] && [ -n "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${{OCI_ENTRYPOINT}} ${{CMDLINE_ARGS}}"
    else
        SINGULARITY_OCI_RUN="${{OCI_ENTRYPOINT}}"
    fi
fi
# CMD only - run CMD or override with args
if [ -n "$OCI_CMD" ] && [ -z "$OCI_ENTRYPOINT" ]; then
    if [ $# -gt 0 ]; then
        SINGULARITY_OCI_RUN="${{CMDLINE_ARGS}}"
    else
        SINGULARITY_OCI_RUN="${{OCI_CMD}}"
    fi
fi
# ENTRYPOINT and CMD - run ENTRYPOINT with CMD as default args
# override with user provided args
if [ $# -gt 0 ]; then
    SINGULARITY_OCI_RUN="${{OCI_ENTRYPOINT}} ${{CMDLINE_ARGS}}"
else
    SINGULARITY_OCI_RUN="${{OCI_ENTRYPOINT}} ${{OCI_CMD}}"
fi
# Evaluate shell expressions first and set arguments accordingly,
# then execute final command as first container process
eval "set ${{SINGULARITY_OCI_RUN}}"
exec "$@"
"""


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def files_for(config: dict[str, Any]) -> dict[str, str]:
    """Every file injected, path below the root → content."""
    cfg = config.get("config") or {}
    files = {f".singularity.d/actions/{name}": text for name, text in ACTIONS.items()}
    files.update({f".singularity.d/env/{name}": text for name, text in ENV_FILES.items()})
    files[".singularity.d/runscript"] = runscript(_strings(cfg.get("Entrypoint")),
                                                  _strings(cfg.get("Cmd")))
    files[".singularity.d/startscript"] = STARTSCRIPT
    files[ENV_SCRIPT] = env_script(_strings(cfg.get("Env")))
    return files


def _exists(rootfs: RootFS, parts: list[str]) -> bool | None:
    """Whether ``parts`` exists (any type); None if a parent is missing or not a real dir."""
    pfd = rootfs.existing_parent(parts, "", "/".join(parts))
    if pfd is None:
        return None
    try:
        os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(pfd)


def inject(rootfs: RootFS, config: dict[str, Any]) -> None:
    """Write ``/.singularity.d`` and its companions into ``rootfs``, never following a symlink
    the image put there."""
    now = time.time()
    dir_mode = stat.S_IFDIR | 0o755
    for rel in (".singularity.d", ".singularity.d/actions", ".singularity.d/env",
                ".singularity.d/libs"):
        parts = rel.split("/")
        pfd = rootfs.parent(parts, "(injected)", rel)
        try:
            try:
                mode: int | None = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False).st_mode
            except FileNotFoundError:
                mode = None
            if mode is not None and not stat.S_ISDIR(mode):
                rootfs.remove(pfd, parts[-1], tuple(parts))
                mode = None
            if mode is None:
                os.mkdir(parts[-1], 0o755, dir_fd=pfd)
            rootfs.dir_meta.set(parts, dir_mode, now)
        finally:
            os.close(pfd)
    for rel in FHS_DIRS:
        parts = rel.split("/")
        if _exists(rootfs, parts) is False:
            pfd = rootfs.parent(parts, "(injected)", rel)
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=pfd)
            finally:
                os.close(pfd)
            rootfs.dir_meta.set(parts, dir_mode, now)
    for rel, text in files_for(config).items():
        parts = rel.split("/")
        pfd = rootfs.parent(parts, "(injected)", rel)
        try:
            rootfs.remove(pfd, parts[-1], tuple(parts))
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o755, dir_fd=pfd)
            try:
                os.write(fd, text.encode())
                os.chmod(fd, 0o755)
            finally:
                os.close(fd)
        finally:
            os.close(pfd)
    for name, target in SYMLINKS.items():
        if _exists(rootfs, [name]) is False:
            os.symlink(target, name, dir_fd=rootfs.fd)
