"""The environment apptainer hands its action script, and what it injects after ``99-base.sh``.

The order of ``internal/pkg/runtime/launch/launcher_linux.go`` (``Exec``):

1. ``setImageOrInstance``: ``APPTAINER_CONTAINER`` / ``SINGULARITY_CONTAINER`` = the image
   path made absolute (``filepath.Abs``: joined to the cwd and cleaned, symlinks *not*
   resolved), ``APPTAINER_NAME`` / ``SINGULARITY_NAME`` = its last element;
2. ``setBinds``: ``APPTAINER_BIND`` / ``SINGULARITY_BIND`` = the bind destinations joined with
   commas (set, possibly empty);
3. ``setEnvVars`` -> ``internal/pkg/util/env/create.go`` (``SetContainerEnv``): with
   ``--cleanenv`` (or ``--containall``) ``LANG=C``; every ``APPTAINERENV_FOO`` (then
   ``SINGULARITYENV_FOO``, the first one seen winning) becomes an override of ``FOO``
   (``PATH``, ``PREPEND_PATH``, ``APPEND_PATH`` become ``SING_USER_DEFINED_…``; ``HOME``,
   ``PATH`` and the shell/app names cannot be overridden) and removes ``FOO`` from the process
   environment; then each host variable is forwarded unless it starts with ``APPTAINER_`` or
   ``SINGULARITY_``, is ``HOME``, ``PATH``, ``LD_LIBRARY_PATH`` (and the shell/app names), is
   overridden, or ``--cleanenv`` is on and it is not ``TERM`` or a proxy variable; finally
   ``HOME`` = the container home and ``PATH`` = apptainer's default;
4. ``APPTAINER_APPNAME`` / ``SINGULARITY_APPNAME`` = ``""``;
5. ``internal/pkg/runtime/engine/apptainer/process_linux.go`` (``runActionScript``) appends
   ``APPTAINER_COMMAND`` = ``exec`` or ``run`` (the action's base name).

The overrides are exported by the virtual ``/.inject-apptainer-env.sh`` (``injectEnvHandler``):
``export FOO="value"``, the value's double quotes escaped (``shell.EscapeDoubleQuotes``) and
the rest evaluated by the shell, ``UID``/``GID`` skipped, ``:/.singularity.d/libs`` appended to
a non-empty ``LD_LIBRARY_PATH``. Variables whose name is not a shell name are left alone:
apptainer's ``getallenv`` skips them, so its ``clear_env`` never unsets them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # create.go
PREFIXES = ("APPTAINER_", "SINGULARITY_")
ENV_PREFIXES = ("APPTAINERENV_", "SINGULARITYENV_")
ALWAYS_PASS = frozenset({"TERM", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                         "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "ftp_proxy",
                         "FTP_PROXY"})
# create.go alwaysOmitKeys: the value says whether an APPTAINERENV_ override is permitted
ALWAYS_OMIT = {"HOME": False, "PATH": False, "APPTAINER_SHELL": False,
               "APPTAINER_APPNAME": False, "SINGULARITY_SHELL": False,
               "SINGULARITY_APPNAME": False, "LD_LIBRARY_PATH": True}
PATH_OVERRIDES = {"PREPEND_PATH": "SING_USER_DEFINED_PREPEND_PATH",
                  "APPEND_PATH": "SING_USER_DEFINED_APPEND_PATH",
                  "PATH": "SING_USER_DEFINED_PATH"}
SHELL_NAME = re.compile(r"[a-zA-Z_]+[a-zA-Z0-9_]*")  # process_linux.go getAllEnvBuiltin


@dataclass
class ContainerEnv:
    process: dict[str, str]  # the action script's starting environment, in apptainer's order
    inject: dict[str, str]   # overrides, exported after 99-base.sh
    warnings: list[str] = field(default_factory=list)


def image_path(argument: str, cwd: str) -> str:
    """``filepath.Abs``: joined to the cwd and cleaned, symlinks kept."""
    path = os.path.normpath(os.path.join(cwd, argument))
    return "/" + path.lstrip("/")  # Go's Clean makes a leading "//" one slash


def _overrides(host: Mapping[str, str], env: ContainerEnv) -> None:
    for prefix in ENV_PREFIXES:
        for name, value in host.items():
            if not name.startswith(prefix) or not name[len(prefix):]:
                continue
            key = PATH_OVERRIDES.get(name[len(prefix):], name[len(prefix):])
            if key == name[len(prefix):] and ALWAYS_OMIT.get(key) is False:
                env.warnings.append(f"Overriding {key} environment variable with {name} is "
                                    "not permitted")
                continue
            if key in env.inject:
                if env.inject[key] != value:
                    env.warnings.append(f"Skipping environment variable [{name}={value}], "
                                        f"{key} is already overridden with different value "
                                        f"[{env.inject[key]}]")
                continue
            env.inject[key] = value
            env.process.pop(key, None)


def container_env(host: Mapping[str, str], *, container: str, bind_dests: list[str],
                  home: str, clean: bool, command: str) -> ContainerEnv:
    env = ContainerEnv({}, {})
    for prefix in PREFIXES:
        env.process[f"{prefix}CONTAINER"] = container
    for prefix in PREFIXES:
        env.process[f"{prefix}NAME"] = os.path.basename(container) or "/"
    for prefix in PREFIXES:
        env.process[f"{prefix}BIND"] = ",".join(bind_dests)
    if clean:
        env.process["LANG"] = "C"
    _overrides(host, env)
    for name, value in host.items():
        if name.startswith(PREFIXES) or name.startswith(ENV_PREFIXES):
            continue
        if name not in ALWAYS_PASS and (name in ALWAYS_OMIT or clean):
            continue
        if name not in env.inject:
            env.process[name] = value
    env.process["HOME"] = home
    env.process["PATH"] = DEFAULT_PATH
    for prefix in PREFIXES:
        env.process[f"{prefix}APPNAME"] = ""
    env.process["APPTAINER_COMMAND"] = command
    return env


def injected(env: ContainerEnv) -> dict[str, str]:
    """The overrides as ``/.inject-apptainer-env.sh`` writes them: name -> text to evaluate
    inside double quotes. Names the shell cannot take are dropped with a warning."""
    out = {}
    for name, value in sorted(env.inject.items()):
        if name in ("UID", "GID"):
            continue
        if not SHELL_NAME.fullmatch(name):
            env.warnings.append(f"not injecting {name!r}: not a shell variable name")
            continue
        if name == "LD_LIBRARY_PATH" and value:
            value += ":/.singularity.d/libs"
        out[name] = value.replace('"', '\\"')
    return out
