"""How each layer kind becomes exactly one OCI layer.

Clean layer boundaries are what registries and CVMFS deduplicate on, so every kind renders
to a single ``ADD``, ``COPY`` or ``RUN`` that does its own cleanup (apt lists, pip caches,
logs) in the same step. Files a step only *reads* (lock files, scripts) are bind-mounted
from the build context rather than copied, so they never become a layer of their own.
"""

from __future__ import annotations

import base64
import os
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina import pipcache
from lamina.confine import shown
from lamina.errors import RecipeError
from lamina.filemodes import UnsupportedEntry
from lamina.hashing import sha256_data, sha256_file, tree_fingerprint
from lamina.platforms import Platform
from lamina.quoting import Origin, copy_args, shell_path, shell_word
from lamina.recipe import Layer

CA_SECRET_ID = "lamina-ca"
CA_PATH = f"/run/secrets/{CA_SECRET_ID}"
# Directly under /run: buildah removes a bind mount's target after the step, so a target whose
# parent it had to create would leave an empty directory in the layer.
CTX_MOUNT = "/run/lamina-layer"

# Every RUN starts with this: strict shell, and the site CA (when one was given for the
# build) exported to every HTTPS client we know of. The CA arrives as a build secret,
# so it exists only while the step runs and is never committed.
PRELUDE = (
    "set -eu; "
    f"if [ -r {CA_PATH} ]; then export SSL_CERT_FILE={CA_PATH} REQUESTS_CA_BUNDLE={CA_PATH} "
    f"PIP_CERT={CA_PATH} CURL_CA_BUNDLE={CA_PATH} GIT_SSL_CAINFO={CA_PATH} "
    f"NODE_EXTRA_CA_CERTS={CA_PATH} "
    f"LAMINA_APT_CA='-o Acquire::https::CAInfo={CA_PATH}'; else LAMINA_APT_CA=''; fi"
)

APT_CLEANUP = (
    "apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb "
    "/var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log /var/cache/debconf/*-old "
    "/var/lib/dpkg/*-old /var/cache/ldconfig/aux-cache"
)
GENERIC_CLEANUP = "rm -rf /root/.cache /tmp/* /var/tmp/*"
# Debian's maintainer scripts byte-compile some modules (py3compile) with timestamps, which
# makes layers differ on every rebuild; recompile those as hash-based, in the same layer.
_REHASH_PY = (
    "import os, importlib.util as u, py_compile as c\n"
    "for d, _, fs in os.walk('/usr'):\n"
    "    if not d.endswith('__pycache__'): continue\n"
    "    for f in fs:\n"
    "        p = os.path.join(d, f)\n"
    "        if not f.endswith('.pyc') or os.path.islink(p): continue\n"
    "        with open(p, 'rb') as h: flags = int.from_bytes(h.read(8)[4:8], 'little')\n"
    "        if flags & 1: continue\n"
    "        try: src = u.source_from_cache(p)\n"
    "        except ValueError: continue\n"
    "        opt = int(f.split('.opt-')[1][0]) if '.opt-' in f else 0\n"
    "        if os.path.exists(src): c.compile(src, cfile=p, optimize=opt, "
    "invalidation_mode=c.PycInvalidationMode.CHECKED_HASH)\n"
    "        else: os.remove(p)\n"
)
# base64, so the program stays on the RUN instruction's one line and needs no quoting
PYC_REHASH = ("if command -v python3 >/dev/null 2>&1; then python3 -c \"import base64; "
              f"exec(base64.b64decode('{base64.b64encode(_REHASH_PY.encode()).decode()}'))\"; "
              "fi")


@dataclass
class RenderedLayer:
    """One layer's Containerfile instruction plus what it needs and what its key covers."""

    layer: Layer
    instruction: str
    context_files: dict[str, Path] = field(default_factory=dict)  # context-relative → source
    inputs: dict[str, str] = field(default_factory=dict)  # input name → content hash
    rootfs: RootfsRequest | None = None
    # The same step in a form other backends can run without a Containerfile:
    run_body: str | None = None  # shell text of a RUN step (prelude included)
    bind_dir: str | None = None  # context directory bind-mounted at CTX_MOUNT for it
    pip_cache: bool = False  # lamina's wheel cache is mounted for it (lamina.pipcache)
    copy: tuple[str, str, str | None] | None = None  # (context source, dest, mode) of a COPY


@dataclass(frozen=True)
class RootfsRequest:
    """A root filesystem prepared on the host (debootstrap or Debian packages) and ADDed."""

    layer: str
    platform: Platform
    method: str  # "debootstrap" | "debs"
    options: dict[str, Any]
    context_name: str

    @property
    def cache_key(self) -> str:
        # v 2: byte code compiled hash-based (SOURCE_DATE_EPOCH); 3: fixed modes whatever the
        # umask (tmp 1777), debs registered in the dpkg database
        return sha256_data({"m": self.method, "o": self.options, "p": self.platform.name,
                            "v": 3})


def _run(mounts: list[str], script: str) -> str:
    flags = " ".join([f"--mount=type=secret,id={CA_SECRET_ID}", *mounts])
    body = f"{PRELUDE}; {script}"
    # every recipe value in the body went through quoting.shell_word: one line, always
    assert "\n" not in body and "\r" not in body
    return f"RUN {flags} /bin/sh -c {shlex.quote(body)}"


def _bind(context_dir: str) -> str:
    return f"--mount=type=bind,source={context_dir},target={CTX_MOUNT}"


def _origin(layer: Layer, *key: str | int) -> Origin:
    return Origin(layer.doc, key)


def _arch_path(layer: Layer, key: str, platform: Platform) -> tuple[str, str, Path]:
    """The layer-relative path (``{arch}`` expanded) as written and normalized, and the
    real file it names."""
    path = str(layer.spec[key]).replace("{arch}", platform.arch)
    real = layer.file((key,), platform)
    if not real.is_file():
        hint = "; run lamina lock" if key == "lock" and layer.spec.get("requirements") else ""
        raise layer.doc.error((key,), f"file '{shown(path)}' for {platform} not found in "
                                      f"{layer.directory}{hint}")
    return path, posixpath.normpath(path), real


def _context_path(layer: Layer, key: tuple[str | int, ...], copied: bool = False) -> str:
    """A recipe path as it is named in the build context: normalized, and for a COPY source
    without the characters buildah reads as a file pattern there."""
    node: Any = layer.spec
    for part in key:
        node = node[part]
    text = posixpath.normpath(str(node))
    bad = next((c for c in text if c in _GLOB), None) if copied else None
    if bad is not None:
        raise layer.doc.error(key, f"'{shown(text)}' contains '{bad}', which buildah's COPY "
                                   "reads as a file pattern; expected a plain path")
    return text


_GLOB = "*?[]\\"


def spec_for_key(layer: Layer) -> dict[str, Any]:
    """The layer's definition minus what cannot change the layer's bytes."""
    return {k: v for k, v in layer.spec.items() if k not in ("description", "tests")}


def render_layer(layer: Layer, platform: Platform) -> RenderedLayer:
    ctx = f"layers/{layer.name}"
    spec = layer.spec
    base_inputs = {"definition": sha256_data(spec_for_key(layer))}
    kind = layer.kind
    if kind == "rootfs":
        return _render_rootfs(layer, platform, base_inputs)
    if kind == "apt":
        return _render_apt(layer, base_inputs)
    if kind == "pip":
        return _render_pip(layer, platform, base_inputs)
    if kind == "files":
        source = _context_path(layer, ("source",), copied=True)
        src_path = layer.file(("source",))
        inputs = {**base_inputs, f"directory {spec['source'].rstrip('/')}/":
                  _tree_digest(layer, ("source",), src_path)}
        chmod = f" --chmod={spec['mode']}" if "mode" in spec else ""
        target = f"{ctx}/{source}"
        dest = spec["dest"]
        if src_path.is_dir() and not dest.endswith("/"):
            dest += "/"
        arguments = copy_args([(target, _origin(layer, "source"))],
                              (dest, _origin(layer, "dest")))
        instruction = f"COPY{chmod} {arguments}"
        return RenderedLayer(layer, instruction, {target: src_path}, inputs,
                             copy=(target, dest, spec.get("mode")))
    if kind == "script":
        script_name = _context_path(layer, ("script",))
        shell = shell_word(spec.get("shell", "/bin/sh"), _origin(layer, "shell"))
        script_path = layer.file(("script",))
        inputs = {**base_inputs, f"file {spec['script']}": sha256_file(script_path)}
        files = {f"{ctx}/{script_name}": script_path}
        for index, extra in enumerate(spec.get("inputs", [])):
            path = layer.file(("inputs", index))
            inputs[f"input {extra}"] = _tree_digest(layer, ("inputs", index), path)
            files[f"{ctx}/{_context_path(layer, ('inputs', index))}"] = path
        script = (f"cd {CTX_MOUNT}; {shell} ./{shell_word(script_name, _origin(layer, 'script'))}"
                  f"; {GENERIC_CLEANUP}")
        return RenderedLayer(layer, _run([_bind(ctx)], script), files, inputs,
                             run_body=f"{PRELUDE}; {script}", bind_dir=ctx)
    raise RecipeError(f"unknown layer kind '{kind}'")  # the schema makes this unreachable


def _tree_digest(layer: Layer, key: tuple[str | int, ...], path: Path) -> str:
    """The hash of what a files source or script input puts into the build context: contents
    and git's modes (:mod:`lamina.filemodes`), so a checkout's umask changes no key. Hashed
    once per command (``Layer.tree_digests``), not once per platform."""
    known = layer.tree_digests.get(path)
    if known is not None:
        return known
    try:
        digest = sha256_data(tree_fingerprint(path))
        layer.tree_digests[path] = digest
        return digest
    except UnsupportedEntry as exc:
        inner = os.path.relpath(exc.path, layer.directory.resolve())
        raise layer.doc.error(key, f"'{shown(inner)}' is {exc.kind}; expected regular files, "
                                   "directories and symlinks only") from None


def _render_apt(layer: Layer, base_inputs: dict[str, str]) -> RenderedLayer:
    spec = layer.spec
    packages = " ".join(shell_word(p, _origin(layer, "packages", i))
                        for i, p in enumerate(spec["packages"]))
    recommends = "" if spec.get("install_recommends") else " --no-install-recommends"
    optional = ""
    for index, pkg in enumerate(spec.get("optional", [])):
        origin = _origin(layer, "optional", index)
        note = shell_word(f"lamina: optional package {pkg} not installed", origin)
        optional += (f"; apt-get install -y -q{recommends} $LAMINA_APT_CA "
                     f"{shell_word(pkg, origin)} || echo {note}")
    script = (
        "export DEBIAN_FRONTEND=noninteractive; "
        "apt-get update -q $LAMINA_APT_CA; "
        f"apt-get install -y -q{recommends} $LAMINA_APT_CA {packages}{optional}; "
        f"{PYC_REHASH}; {APT_CLEANUP}; {GENERIC_CLEANUP}"
    )
    return RenderedLayer(layer, _run([], script), inputs=base_inputs,
                         run_body=f"{PRELUDE}; {script}")


def _render_pip(layer: Layer, platform: Platform,
                base_inputs: dict[str, str]) -> RenderedLayer:
    spec = layer.spec
    ctx = f"layers/{layer.name}"
    written, lock, lock_path = _arch_path(layer, "lock", platform)
    prefix = spec.get("prefix", "/usr/local")
    python = shell_word(spec.get("python", "python3"), _origin(layer, "python"))
    inputs = {**base_inputs, f"file {written}": sha256_file(lock_path)}
    # PYTHONDONTWRITEBYTECODE keeps pip's own imports from leaving timestamped .pyc files
    # behind; the packages it installs are still compiled (hash-based, SOURCE_DATE_EPOCH).
    env = ("export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 "
           "PIP_ROOT_USER_ACTION=ignore PYTHONDONTWRITEBYTECODE=1; ")
    install = "--require-hashes --break-system-packages"
    venv = ""
    if prefix == "/usr/local":
        # Debian's pip already installs to /usr/local; an explicit --prefix would land in
        # /usr/local/local because of Debian's posix_local scheme.
        pip = f"{python} -m pip"
    else:
        # Any other prefix is a venv that still sees the system's packages.
        q = shell_word(prefix, _origin(layer, "prefix"))
        venv = (f"[ -x {q}/bin/python ] || {python} -m venv "
                f"--system-site-packages --without-pip {q}; ")
        pip = f"{python} -m pip --python {q}/bin/python"
    ql = shell_path(lock, _origin(layer, "lock"))
    # an empty lock (a fresh `lamina init` project) installs nothing rather than failing;
    # wheels come from lamina's cache when it is mounted (lamina.pipcache)
    script = (f"cd {CTX_MOUNT}; {env}if grep -q '^[^#[:space:]]' {ql}; then {venv}"
              f"{pipcache.install_script(python, pip, install, ql)}; fi; {GENERIC_CLEANUP}")
    files = {f"{ctx}/{lock}": lock_path}
    return RenderedLayer(layer, _run([_bind(ctx), pipcache.mount_flag()], script), files,
                         inputs, run_body=f"{PRELUDE}; {script}", bind_dir=ctx,
                         pip_cache=True)


def _render_rootfs(layer: Layer, platform: Platform,
                   base_inputs: dict[str, str]) -> RenderedLayer:
    spec = layer.spec
    name = f"rootfs-{layer.name}-{platform.arch}.tar"
    if "tarball" in spec:
        tarball, _, path = _arch_path(layer, "tarball", platform)
        inputs = {**base_inputs, f"file {tarball}": sha256_file(path)}
        add = copy_args([(name, _origin(layer, "tarball"))], ("/", _origin(layer)))
        return RenderedLayer(layer, f"ADD {add}", {name: path}, inputs)
    method = "debootstrap" if "debootstrap" in spec else "debs"
    options = dict(spec[method])
    request = RootfsRequest(layer.name, platform, method, options, name)
    add = copy_args([(name, _origin(layer, method))], ("/", _origin(layer)))
    return RenderedLayer(layer, f"ADD {add}", {}, base_inputs, rootfs=request)
