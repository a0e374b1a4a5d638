"""``--bind`` specifications, read with apptainer's grammar.

apptainer ``pkg/runtime/engine/apptainer/config/bind.go`` (``ParseBindPath``, ``newBindPath``):
one argument holds one or more comma-separated ``src[:dst[:opts]]``; ``opts`` is itself a
comma-separated list of ``ro``, ``rw``, ``image-src=…``, ``id=…``, so a comma after a
two-colon bind starts another option when the next piece is an option, else a new bind
(``/a:/b:ro,rw,/c:/d``). ``\\,`` and ``\\:`` are a literal comma and colon. ``dst`` defaults
to ``src``; more than three parts, an empty source or an unknown option is an error.
``launcher_linux.go`` (``setBinds``) and ``container_linux.go`` (``addUserbindsMount``) then
make the source absolute against the current directory; ``mount_linux.go`` refuses a
destination that is not absolute. The flag's values come first, then ``APPTAINER_BIND`` and
``APPTAINER_BINDPATH`` (``SINGULARITY_…`` when the ``APPTAINER_`` one is unset), as
``cmd/internal/cli/action_flags.go`` declares ``EnvKeys: BIND, BINDPATH`` with
``EnvAppendValue``.

Data-image binds (``image-src=``, ``id=``) need a SIF or ext3 image, which lamina does not
mount: they are refused with a message rather than silently dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lamina.errors import UsageError

FLAG_OPTIONS = ("ro", "rw")
VALUE_OPTIONS = ("image-src", "id")
BIND_ENV_KEYS = ("BIND", "BINDPATH")


@dataclass(frozen=True)
class BindSpec:
    source: str       # absolute host path
    destination: str  # container path, as written
    readonly: bool
    spec: str         # the text it came from, for messages


def _is_option(piece: str) -> bool:
    return piece in FLAG_OPTIONS or any(piece.startswith(f"{o}=") for o in VALUE_OPTIONS)


def _split_unescaped(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` not preceded by a backslash; ``\\sep`` stays escaped."""
    return re.split(rf"(?<!\\){re.escape(sep)}", text)


def _one(bind: str, cwd: str) -> BindSpec:
    parts = _split_unescaped(bind, ":")
    if len(parts) > 3:
        raise UsageError(f"--bind {bind!r}: bad bind syntax, expected src[:dst[:opts]]")
    source = parts[0].replace("\\:", ":").replace("\\,", ",")
    if not source:
        raise UsageError(f"--bind {bind!r}: empty bind source")
    # apptainer unescapes ``\\:`` in the source only (newBindPath)
    destination = parts[1].replace("\\,", ",") if len(parts) > 1 else source
    readonly = False
    if len(parts) > 2:
        for option in parts[2].split("\x00"):
            if option == "ro":
                readonly = True
            elif option == "rw":
                pass
            elif any(option.startswith(f"{o}=") for o in VALUE_OPTIONS):
                raise UsageError(f"--bind {bind!r}: {option.split('=')[0]} binds a data image "
                                 "(SIF/ext3), which lamina exec does not mount")
            else:
                raise UsageError(f"--bind {bind!r}: {option!r} is not a valid bind option "
                                 "(ro, rw)")
    if not destination.startswith("/"):
        raise UsageError(f"--bind {bind!r}: the destination {destination!r} must be an "
                         "absolute path")
    display = bind.replace("\x00", ",")
    return BindSpec(os.path.normpath(os.path.join(cwd, source)), destination, readonly, display)


def parse_binds(values: Iterable[str], cwd: str) -> list[BindSpec]:
    """Every bind of every value, in order."""
    binds: list[BindSpec] = []
    for value in values:
        current: list[str] = []  # [bind text] while it may still take options
        pieces = [p.strip() for p in _split_unescaped(value, ",")]
        for piece in pieces:
            if not piece:
                continue
            if current and current[0].count(":") - current[0].count("\\:") == 2 \
                    and _is_option(piece):
                current[0] += "\x00" + piece  # another option of the same bind
                continue
            if current:
                binds.append(_one(current[0], cwd))
            current = [piece]
        if current:
            binds.append(_one(current[0], cwd))
    return binds


def env_bind_values(host: Mapping[str, str]) -> list[str]:
    """The binds apptainer takes from its environment, after the command line's."""
    values = []
    for key in BIND_ENV_KEYS:
        value = host.get(f"APPTAINER_{key}")
        if value is None:
            value = host.get(f"SINGULARITY_{key}")
        if value is not None and value.strip():
            values.append(value)
    return values
