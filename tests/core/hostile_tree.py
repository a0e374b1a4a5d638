"""A recipe tree in which every field lamina renders into a Containerfile can be set.

One image (``img``, parent scratch) uses one layer of every kind, so its Containerfile
holds every rendered field: ADD (rootfs tarball), RUN (apt, pip, script), COPY (files),
ENV (image and layer env), WORKDIR, USER, ENTRYPOINT, CMD, LABEL, ARG. Values are written
as YAML double-quoted scalars with every unprintable character escaped, so the recipe
carries exactly the string a test chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.yamlio import dotted

# field name → (file, key path); the default values make a tree that renders
FIELDS: dict[str, tuple[str, tuple[str | int, ...]]] = {
    "env key": ("images/img/image.yaml", ("env",)),
    "env value": ("images/img/image.yaml", ("env", "IMG_VAR")),
    "label key": ("images/img/image.yaml", ("labels",)),
    "label value": ("images/img/image.yaml", ("labels", "org.example.note")),
    "workdir": ("images/img/image.yaml", ("workdir",)),
    "user": ("images/img/image.yaml", ("user",)),
    "build arg name": ("images/img/image.yaml", ("build_args",)),
    "build arg value": ("images/img/image.yaml", ("build_args", "FLAVOUR")),
    "description": ("images/img/image.yaml", ("description",)),
    "entrypoint": ("images/img/image.yaml", ("entrypoint", 0)),
    "cmd": ("images/img/image.yaml", ("cmd", 1)),
    "layer env key": ("layers/run/layer.yaml", ("env",)),
    "layer env value": ("layers/run/layer.yaml", ("env", "LAYER_VAR")),
    "apt package": ("layers/pkgs/layer.yaml", ("packages", 0)),
    "apt optional": ("layers/pkgs/layer.yaml", ("optional", 0)),
    "pip python": ("layers/py/layer.yaml", ("python",)),
    "pip prefix": ("layers/py/layer.yaml", ("prefix",)),
    "pip lock": ("layers/py/layer.yaml", ("lock",)),
    "files source": ("layers/data/layer.yaml", ("source",)),
    "files dest": ("layers/data/layer.yaml", ("dest",)),
    "files mode": ("layers/data/layer.yaml", ("mode",)),
    "script shell": ("layers/run/layer.yaml", ("shell",)),
    "script script": ("layers/run/layer.yaml", ("script",)),
    "script input": ("layers/run/layer.yaml", ("inputs", 0)),
}
KEY_FIELDS = {"env key": "IMG_VAR", "label key": "org.example.note",
              "build arg name": "FLAVOUR", "layer env key": "LAYER_VAR"}


@dataclass
class Values:
    """The recipe's value of every rendered field."""

    env: dict[str, str] = field(default_factory=lambda: {"IMG_VAR": "hello"})
    labels: dict[str, str] = field(default_factory=lambda: {"org.example.note": "a note"})
    workdir: str = "/work"
    user: str = "1000:1000"
    build_args: dict[str, str] = field(default_factory=lambda: {"FLAVOUR": "plain"})
    description: str = "a hostile test image"
    entrypoint: list[str] = field(default_factory=lambda: ["/bin/sh", "-c"])
    cmd: list[str] = field(default_factory=lambda: ["echo", "hi"])
    layer_env: dict[str, str] = field(default_factory=lambda: {"LAYER_VAR": "1"})
    package: str = "busybox"
    optional: str = "less"
    python: str = "python3"
    prefix: str = "/opt/venv"
    lock: str = "requirements.lock"
    source: str = "files"
    dest: str = "/opt/data"
    mode: str = "0644"
    shell: str = "/bin/sh"
    script: str = "build.sh"
    input: str = "input.txt"

    def set(self, name: str, value: str) -> None:
        """Set one field (a key field renames the default key)."""
        mapping = {"env key": "env", "label key": "labels", "build arg name": "build_args",
                   "layer env key": "layer_env"}
        if name in mapping:
            old: dict[str, str] = getattr(self, mapping[name])
            setattr(self, mapping[name], {value: old[KEY_FIELDS[name]]})
            return
        attr = {"env value": ("env", "IMG_VAR"), "label value": ("labels", "org.example.note"),
                "build arg value": ("build_args", "FLAVOUR"),
                "layer env value": ("layer_env", "LAYER_VAR")}.get(name)
        if attr is not None:
            getattr(self, attr[0])[attr[1]] = value
        elif name == "entrypoint":
            self.entrypoint[0] = value
        elif name == "cmd":
            self.cmd[1] = value
        else:
            setattr(self, {"apt package": "package", "apt optional": "optional",
                           "pip python": "python", "pip prefix": "prefix", "pip lock": "lock",
                           "files source": "source", "files dest": "dest",
                           "files mode": "mode", "script shell": "shell",
                           "script script": "script", "script input": "input"}.get(
                               name, name), value)


def q(text: str) -> str:
    """A YAML double-quoted scalar holding exactly ``text``."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif (char.isprintable() and char not in "\u2028\u2029\ufeff") or char == " ":
            out.append(char)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _mapping(name: str, values: dict[str, str]) -> list[str]:
    return [f"{name}:"] + [f"  {q(k)}: {q(v)}" for k, v in values.items()]


def _seq(name: str, values: list[str]) -> list[str]:
    return [f"{name}:"] + [f"  - {q(v)}" for v in values]


def _touch(path: Path, text: str = "", directory: bool = False) -> None:
    """Make a file the recipe names; a name the filesystem refuses is left to lamina."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            path.mkdir(parents=True, exist_ok=True)
            (path / "data.txt").write_text("data\n")
        else:
            path.write_text(text)
    except (OSError, ValueError, UnicodeEncodeError):
        pass


def write_tree(root: Path, v: Values, rootfs: list[str] | None = None) -> dict[str, Any]:
    """Write the tree; returns ``{file: {key path: line}}`` for locating errors."""
    files: dict[str, list[str]] = {
        "recipe.yaml": ["name: hostile", "platforms: [linux/amd64]",
                        "source_date_epoch: 1700000000"],
        "images/img/image.yaml": [
            "parent: scratch", "layers: [root, pkgs, py, data, run]",
            f"description: {q(v.description)}", *_mapping("env", v.env),
            *_mapping("labels", v.labels), f"workdir: {q(v.workdir)}", f"user: {q(v.user)}",
            *_mapping("build_args", v.build_args), *_seq("entrypoint", v.entrypoint),
            *_seq("cmd", v.cmd)],
        "layers/root/layer.yaml": ["kind: rootfs", *(rootfs or ["tarball: root.tar"])],
        "layers/pkgs/layer.yaml": ["kind: apt", *_seq("packages", [v.package]),
                                   *_seq("optional", [v.optional])],
        "layers/py/layer.yaml": ["kind: pip", f"lock: {q(v.lock)}", f"python: {q(v.python)}",
                                 f"prefix: {q(v.prefix)}"],
        "layers/data/layer.yaml": ["kind: files", f"source: {q(v.source)}",
                                   f"dest: {q(v.dest)}", f"mode: {q(v.mode)}"],
        "layers/run/layer.yaml": ["kind: script", f"script: {q(v.script)}",
                                  f"shell: {q(v.shell)}", *_seq("inputs", [v.input]),
                                  *_mapping("env", v.layer_env)],
    }
    for name, lines in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _touch(root / "layers/root/root.tar", "not really a tar: render only hashes it\n")
    _touch(root / "layers/py" / v.lock, "# an empty lock installs nothing\n")
    _touch(root / "layers/data" / v.source, directory=True)
    _touch(root / "layers/run" / v.script, "#!/bin/sh\necho ran > /ran.txt\n")
    _touch(root / "layers/run" / v.input, "input\n")
    return {name: lines for name, lines in files.items()}


def line_of(lines: list[str], field_name: str, v: Values) -> int:
    """The 1-based line where ``field_name`` is written in its file."""
    _, key = FIELDS[field_name]
    head = key[0]
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{head}:"))
    if len(key) == 1 and field_name not in KEY_FIELDS:
        return start + 1
    if isinstance(key[-1], int):
        return start + 2 + key[-1]
    return start + 2  # the first (only) entry of the mapping


def location(field_name: str, value: str) -> str:
    """The ``key`` part of the error for a refused ``field_name``."""
    _, key = FIELDS[field_name]
    if field_name in KEY_FIELDS:
        key = (key[0], value)
    return dotted(key)

