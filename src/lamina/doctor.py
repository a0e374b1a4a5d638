"""Checks that say what is missing on this machine for this tree, and how to fix it.

A HEP site admin setting up a runner should get one table, not a stack of build failures:
tools, binfmt/qemu for each foreign platform the recipe declares, the store, and any
publish targets' reachability.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from lamina.http import BoundedSession, http_timeout
from lamina.platforms import Platform, host_platform
from lamina.recipe import Recipe

TOOLS = {
    "buildah": "apt-get install buildah (or run scripts/setup)",
    "skopeo": "apt-get install skopeo (or run scripts/setup)",
    "umoci": "apt-get install umoci (or run scripts/setup)",
    "debootstrap": "apt-get install debootstrap (needed for rootfs layers built with it)",
    "bwrap": "apt-get install bubblewrap (needed by lamina exec)",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _version(tool: str) -> str:
    try:
        proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "installed"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "installed"


def check_tools() -> list[Check]:
    out = []
    for tool, fix in TOOLS.items():
        path = shutil.which(tool)
        out.append(Check(f"tool {tool}", path is not None,
                         _version(tool) if path else "not found", "" if path else fix))
    return out


def check_platform(platform: Platform, binfmt_dir: Path = Path("/proc/sys/fs/binfmt_misc")
                   ) -> Check:
    name = f"platform {platform}"
    if platform == host_platform():
        return Check(name, True, "native")
    entry = binfmt_dir / platform.qemu_binfmt
    if not (binfmt_dir / "status").exists():
        return Check(name, False, "binfmt_misc is not mounted",
                     "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc")
    if not entry.exists():
        return Check(name, False, f"no {platform.qemu_binfmt} binfmt entry",
                     "apt-get install qemu-user-static binfmt-support")
    text = entry.read_text()
    if "enabled" not in text.splitlines()[0]:
        return Check(name, False, f"{platform.qemu_binfmt} is disabled",
                     f"update-binfmts --enable {platform.qemu_binfmt}")
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("flags:")), "")
    if "F" not in flags:
        return Check(name, False, f"{platform.qemu_binfmt} lacks the F flag (interpreter not "
                     "usable inside build chroots)", "reinstall qemu-user-static")
    return Check(name, True, f"qemu via binfmt (flags {flags})")


def check_store(store: Path) -> Check:
    target = store if store.exists() else store.parent
    while not target.exists():
        target = target.parent
    writable = os.access(target, os.W_OK)
    return Check("store", writable, str(store),
                 "" if writable else f"make {target} writable or set LAMINA_STORE")


def check_target(registry: str) -> Check:
    if "@" in registry:  # never name (or contact) a host with the credentials in it
        return Check("registry <redacted>@" + registry.rsplit("@", 1)[1], False,
                     "credentials in a target are not accepted",
                     "use LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables or --authfile")
    host = registry.split("/")[0]
    scheme = "http" if host.split(":")[0] in ("127.0.0.1", "localhost", "::1") else "https"
    try:
        answer = BoundedSession(timeout=min(10.0, http_timeout())).get(
            f"{scheme}://{host}/v2/")
    except requests.RequestException as exc:
        return Check(f"registry {host}", False, f"unreachable ({type(exc).__name__})",
                     "check the network, proxy and CA settings")
    if answer.status_code in (200, 401):
        auth = answer.headers.get("WWW-Authenticate", "").split(" ")[0] or "none"
        return Check(f"registry {host}", True, f"reachable (auth: {auth})")
    return Check(f"registry {host}", False, f"answered {answer.status_code} on /v2/",
                 "is this an OCI registry endpoint?")


def run_checks(recipe: Recipe, store: Path) -> list[Check]:
    checks = check_tools()
    platforms: list[Platform] = []
    for image in recipe.images.values():
        for platform in image.platforms:
            if platform not in platforms and not image.excluded(platform):
                platforms.append(platform)
    checks += [check_platform(p) for p in sorted(platforms)]
    checks.append(check_store(store))
    for target in recipe.settings.get("targets") or []:
        checks.append(check_target(str(target["registry"])))
    return checks
