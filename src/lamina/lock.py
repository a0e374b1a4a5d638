"""``lamina lock``: resolve each pip layer per platform into a hashed lock file, before any build.

Resolution runs on the host with pip's own resolver told the *target* platform
(``--platform``/``--python-version``/``--only-binary=:all:``), so an arm64 or ppc64le lock is
made in seconds instead of under emulation, and a package with no wheel for a platform is
found here, not an hour into a qemu build. Such a platform gets a lock file that holds no
requirements but a ``# lamina: no-wheel:`` line naming the packages; the plan reads it and
marks that node × platform excluded with that reason.

pip is used rather than uv because uv has no ppc64le target; the lock format is the same
``name==version --hash=sha256:…`` that ``pip install --require-hashes`` checks in the build.
Manylinux tags are listed explicitly from the image's glibc (Debian bookworm: 2.36) down,
because pip does not expand a given ``--platform`` to older compatible tags.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lamina import atomic
from lamina.autotests import requested_packages
from lamina.errors import ToolError
from lamina.platforms import Platform
from lamina.recipe import Layer
from lamina.redact import redact

NO_WHEEL = "# lamina: no-wheel:"
MANYLINUX_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le"}
_MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)")


@dataclass
class LockResult:
    layer: str
    platform: Platform
    path: Path
    packages: int = 0
    no_wheel: list[str] = field(default_factory=list)
    changed: bool = False

    @property
    def ok(self) -> bool:
        return not self.no_wheel


def platform_tags(platform: Platform, glibc: str = "2.36") -> list[str]:
    """Every manylinux tag a glibc ``glibc`` system of this architecture accepts, best first."""
    arch = MANYLINUX_ARCH.get(platform.arch, platform.arch)
    major, minor = (int(x) for x in glibc.split("."))
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
    legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
    for name, needed in legacy.items():
        if minor >= needed and (name == "manylinux2014" or arch == "x86_64"):
            tags.append(f"{name}_{arch}")
    return tags


def no_wheel_reason(lock_text: str) -> str | None:
    for line in lock_text.splitlines():
        if line.startswith(NO_WHEEL):
            return line[len(NO_WHEEL):].strip()
    return None


def _pins(lock: Path) -> list[str]:
    return [line.split()[0] for line in lock.read_text().splitlines()
            if "==" in line and not line.startswith("#")]


def _pip_resolve(requirements: list[str], platform: Platform, python: str, glibc: str,
                 ca_bundle: Path | None, no_deps: bool = False, timeout: int = 180,
                 constraints: list[str] | None = None
                 ) -> tuple[dict[str, object] | None, str]:
    with tempfile.TemporaryDirectory(prefix="lamina-lock-") as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(requirements) + "\n")
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--quiet", "--no-input", "--report", str(report), "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp",
               "--target", str(Path(tmp) / "target"), "-r", str(req)]
        if no_deps:
            cmd.append("--no-deps")
        if constraints:
            (Path(tmp) / "below.txt").write_text("\n".join(constraints) + "\n")
            cmd += ["-c", str(Path(tmp) / "below.txt")]
        for tag in platform_tags(platform, glibc):
            cmd += ["--platform", tag]
        if ca_bundle is not None:
            cmd += ["--cert", str(ca_bundle)]
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        env.pop("PIP_FIND_LINKS", None)  # a host wheel directory would not exist in the image
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                                  timeout=timeout)
        except FileNotFoundError:
            raise ToolError("pip is needed for lamina lock (python -m pip)") from None
        except subprocess.TimeoutExpired:
            # pip backtracks through every older release when one dependency has no wheel
            # for the platform; that is a no-wheel case found the slow way, not a hang to wait on
            return None, f"No matching distribution found within {timeout}s (backtracking)"
        if proc.returncode != 0:
            return None, redact(proc.stderr)
        data: dict[str, object] = json.loads(report.read_text())
        return data, ""


def _lock_lines(report: dict[str, object]) -> list[str]:
    items = report.get("install")
    assert isinstance(items, list)
    lines = []
    for item in sorted(items, key=lambda i: str(i["metadata"]["name"]).lower()):
        name = item["metadata"]["name"]
        version = item["metadata"]["version"]
        hashes = (item.get("download_info", {}).get("archive_info", {}).get("hashes") or {})
        if "sha256" not in hashes:
            raise ToolError(f"pip gave no sha256 for {name} {version}; cannot lock it")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{hashes['sha256']}")
    return lines


def lock_layer(layer: Layer, platform: Platform, ca_bundle: Path | None,
               reference: Path | None = None, below: list[Path] | None = None) -> LockResult:
    """Lock ``layer`` for ``platform``; ``reference`` is the same layer's lock for another
    platform, whose pinned closure tells quickly which distributions lack a wheel here."""
    spec = layer.spec
    # both through the confined resolver: a lock path or a symlinked lock file that points
    # out of the layer directory is refused before anything is read or written
    requirements_file = layer.file(("requirements",))
    lock_path = layer.file(("lock",), platform)
    python = str(spec.get("python_version", "3.11"))
    glibc = str(spec.get("glibc", "2.36"))
    source = requirements_file.read_text()
    wanted = [line.split("#", 1)[0].strip() for line in source.splitlines()]
    wanted = [w for w in wanted if w and not w.startswith("-")]
    header = (f"# lamina lock for {platform}, CPython {python}, glibc {glibc}; made by "
              f"'lamina lock' from {requirements_file.name} (sha256 "
              f"{hashlib.sha256(source.encode()).hexdigest()[:16]}). Do not edit.\n")
    result = LockResult(layer.name, platform, lock_path)
    if not wanted:
        text = header
    else:
        pins = [pin for path in below or [] for pin in _pins(path)]
        report, error = _pip_resolve(wanted, platform, python, glibc, ca_bundle,
                                     constraints=pins)
        if report is not None:
            lines = _lock_lines(report)
            result.packages = len(lines)
            text = header + "\n".join(lines) + "\n"
        else:
            if "No matching distribution" not in error:
                first = next((ln for ln in error.splitlines() if "ERROR" in ln), error[:200])
                raise ToolError(f"layer {layer.name} {platform}: pip could not resolve: "
                                f"{first.strip()}")
            result.no_wheel = (_missing_from_reference(reference, platform, python, glibc,
                                                       ca_bundle) if reference else []
                               ) or _find_missing(wanted, platform, python, glibc, ca_bundle)
            text = (header + f"{NO_WHEEL} {', '.join(result.no_wheel)} have no wheel for "
                    f"{platform}\n")
    old = lock_path.read_text() if lock_path.exists() else None
    result.changed = old != text
    if result.changed:
        atomic.write_text(lock_path, text)
    return result


def _missing_from_reference(reference: Path, platform: Platform, python: str, glibc: str,
                            ca_bundle: Path | None) -> list[str]:
    """Pinned distributions of another platform's lock that have no wheel here: each checked
    alone, without dependencies, so no backtracking and a precise list."""
    pins = _pins(reference)

    def probe(pin: str) -> str | None:
        report, _ = _pip_resolve([pin], platform, python, glibc, ca_bundle, no_deps=True,
                                 timeout=120)
        return None if report is not None else pin

    with ThreadPoolExecutor(max_workers=6) as pool:
        return [m for m in pool.map(probe, pins) if m]


def _find_missing(wanted: list[str], platform: Platform, python: str, glibc: str,
                  ca_bundle: Path | None) -> list[str]:
    """Which requested packages cannot be installed from wheels, and through which
    dependency, resolving each request on its own (in parallel)."""
    def probe(requirement: str) -> str | None:
        report, error = _pip_resolve([requirement], platform, python, glibc, ca_bundle)
        if report is not None:
            return None
        match = _MISSING.search(error)
        name = requested_packages(requirement)[0] if requested_packages(requirement) else (
            requirement)
        if match and match[1].lower() != name.lower():
            return f"{name} (needs {match[1]})"
        return name

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = [m for m in pool.map(probe, wanted) if m]
    return found or ["(a combination of requests)"]
