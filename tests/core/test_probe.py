"""The package probe reads dpkg's database the same way with or without dpkg-query.

The same ``/var/lib/dpkg/status`` is probed twice, with the real probe text run by a real
shell in a bubblewrap root: once in a root that has the host's dpkg-query, once in a root
that has only a static busybox (as a ``debs:`` rootfs of a few packages, or a distroless
image). Both must give the same packages: those whose files are on disk, not those dpkg
lists as ``config-files`` or ``not-installed`` ("Package states" in dpkg(1)).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lamina.errors import ToolError
from lamina.manifests import PROBE, parse_probe
from tests.core.conftest import require_tool

STATUS = """\
Package: alpha
Maintainer: Someone <s@example.org>
Status: install ok installed
Priority: optional
Installed-Size: 10
Architecture: amd64
Version: 1:2.0-1
Description: first
 Package: not-a-field (a continuation line)
 .
 more

Package: gone
Maintainer: Someone <s@example.org>
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9
Description: removed, its conffiles left

Package: half
Maintainer: Someone <s@example.org>
Status: install reinstreq unpacked
Architecture: all
Version: 3
Description: unpacked, not configured

Package: zeta
Maintainer: Someone <s@example.org>
Status: install ok installed
Architecture: all
Version: 1.0~rc1+dfsg
Description: the last stanza has no empty line after it
"""

EXPECTED = {"deb": {"alpha": "1:2.0-1", "half": "3", "zeta": "1.0~rc1+dfsg"}, "pip": {}}


def probe_in(root_args: list[str], status: Path) -> str:
    proc = subprocess.run(
        ["bwrap", "--unshare-all", "--die-with-parent", *root_args, "--proc", "/proc",
         "--dev", "/dev", "--ro-bind", str(status.parent), "/var/lib/dpkg",
         "/bin/sh", "-c", PROBE], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_status_file_and_dpkg_query_give_the_same_packages(tmp_path: Path) -> None:
    require_tool("bwrap")
    require_tool("dpkg-query")
    require_tool("busybox")
    admin = tmp_path / "dpkg"
    admin.mkdir()
    (admin / "status").write_text(STATUS)
    (admin / "info").mkdir()
    (admin / "updates").mkdir()
    host = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind", "/etc", "/etc"]
    with_dpkg = probe_in(host, admin / "status")
    assert with_dpkg.startswith("deb\talpha\t1:2.0-1\t10\tinstalled\n")

    busybox_root = tmp_path / "root"
    (busybox_root / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "", busybox_root / "bin/busybox")
    (busybox_root / "bin/sh").symlink_to("busybox")
    (busybox_root / "var/lib/dpkg").mkdir(parents=True)
    without = probe_in(["--bind", str(busybox_root), "/"], admin / "status")
    assert "dpkg-query" not in without
    # (the host root also has the host's python3, whose pip list is not the point here)
    assert parse_probe(with_dpkg)["deb"] == parse_probe(without)["deb"] == EXPECTED["deb"]
    assert parse_probe(without)["pip"] == {}


def test_a_damaged_database_fails_the_probe_instead_of_listing_nothing(tmp_path: Path) -> None:
    require_tool("bwrap")
    require_tool("dpkg-query")
    admin = tmp_path / "dpkg"
    admin.mkdir()
    (admin / "status").write_text(STATUS.rstrip("\n"))  # dpkg refuses a missing newline
    host = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--ro-bind", "/etc", "/etc"]
    output = probe_in(host, admin / "status")
    with pytest.raises(ToolError) as caught:
        parse_probe(output)
    assert str(caught.value) == (
        "the package probe: dpkg-query exited with 2 in the image (is its "
        "/var/lib/dpkg/status damaged?); its package list is unknown")
