"""Platforms lamina builds for, and the names each ecosystem gives them.

OCI says ``linux/arm64``, ``uname -m`` says ``aarch64``, CVMFS's multi-arch tree says
``arm64``, Debian says ``arm64`` and pip wheels say ``aarch64``: one table here keeps
them consistent everywhere else.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    arch: str

    @property
    def name(self) -> str:
        return f"{self.os}/{self.arch}"

    @property
    def uname(self) -> str:
        return UNAME[self.arch]

    @property
    def debian_arch(self) -> str:
        return DEBIAN_ARCH[self.arch]

    @property
    def qemu_binfmt(self) -> str:
        """Name of the binfmt_misc entry that runs this platform's binaries on another host."""
        return f"qemu-{QEMU[self.arch]}"

    def __str__(self) -> str:
        return self.name


UNAME = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le"}
DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64", "ppc64le": "ppc64el"}
QEMU = {"amd64": "x86_64", "arm64": "aarch64", "ppc64le": "ppc64le"}
SUPPORTED = ("linux/amd64", "linux/arm64", "linux/ppc64le")


def parse_platform(text: str) -> Platform:
    """``linux/arm64`` → Platform; callers validate against :data:`SUPPORTED` first."""
    os_name, _, arch = text.partition("/")
    return Platform(os_name, arch)


def host_platform() -> Platform:
    machine = _platform.machine()
    for arch, uname in UNAME.items():
        if uname == machine:
            return Platform("linux", arch)
    return Platform("linux", machine)
