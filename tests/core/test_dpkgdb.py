"""A debs rootfs's dpkg database is what real dpkg writes for the same packages.

The oracle is dpkg itself: the same .deb files are installed with ``dpkg --root`` into an
empty root, and lamina's registration (:mod:`lamina.dpkgdb`) must give the same
``status`` file and the same ``info/`` files, byte for byte. The packages are built here with
``dpkg-deb --build`` so that they exercise what dpkg normalises (field names in another
case, a dependency folded over two lines, ``Essential: no``, ``Multi-Arch: same`` info file
names, conffiles, a package without ``md5sums``, a hardlink, a symlink, a maintainer script).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lamina import dpkgdb
from tests.core.conftest import require_tool

DEMO_CONTROL = """\
package: lamina-demo
Version: 1:2.0-1
architecture: amd64
Maintainer: Someone <s@example.org>
Multi-Arch: same
Essential: no
Depends: libc6 (>= 2.34),
  libmd0
Homepage: https://example.org
Installed-Size: 12
X-Custom-Field: kept
Description: a demo package
 with a longer description.
 .
 and a second paragraph
Priority: optional
Section: misc
"""

TOOL_CONTROL = """\
Package: aa-tool
Version: 0.1
Architecture: all
Maintainer: Someone <s@example.org>
Essential: yes
Multi-Arch: foreign
Pre-Depends: lamina-demo
Description: sorts before lamina-demo
"""


def run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def build_deb(tmp: Path, name: str, control: str, files: dict[str, str],
              conffiles: str = "", md5sums: bool = False, postinst: str = "") -> Path:
    pkg = tmp / f"src-{name}"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(control)
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            path.symlink_to(text[2:])
        elif text.startswith("=>"):
            os.link(pkg / text[2:], path)
        else:
            path.write_text(text)
    if conffiles:
        (pkg / "DEBIAN/conffiles").write_text(conffiles)
    if md5sums:
        run("sh", "-c", f"cd {pkg} && find . -path ./DEBIAN -prune -o -type f -print0 "
                        "| sort -z | xargs -0 md5sum | sed 's|  \\./|  |' > DEBIAN/md5sums")
    if postinst:
        (pkg / "DEBIAN/postinst").write_text(postinst)
        (pkg / "DEBIAN/postinst").chmod(0o755)
    deb = tmp / f"{name}.deb"
    run("dpkg-deb", "--root-owner-group", "--build", str(pkg), str(deb))
    return deb


def database(root: Path) -> dict[str, bytes]:
    """The registration's files: status and info/* (not dpkg's run-time lock/backup files)."""
    base = root / "var/lib/dpkg"
    files = {"status": (base / "status").read_bytes()}
    for path in sorted((base / "info").iterdir()):
        files[f"info/{path.name}"] = path.read_bytes()
        files[f"mode info/{path.name}"] = oct(path.stat().st_mode & 0o7777).encode()
    return files


def test_registration_matches_what_dpkg_writes(tmp_path: Path) -> None:
    require_tool("dpkg")
    require_tool("dpkg-deb")
    demo = build_deb(tmp_path, "demo", DEMO_CONTROL,
                     {"etc/demo/demo.conf": "key=1\n", "usr/share/demo/a.txt": "x\n",
                      "usr/share/demo/b.txt": "=>usr/share/demo/a.txt",
                      "usr/share/demo/link": "->a.txt"},
                     conffiles="/etc/demo/demo.conf\n")
    tool = build_deb(tmp_path, "tool", TOOL_CONTROL, {"usr/bin/aa-tool": "#!/bin/sh\n"},
                     md5sums=True, postinst="#!/bin/sh\nexit 0\n")
    oracle = tmp_path / "oracle"
    (oracle / "var/lib/dpkg/info").mkdir(parents=True)
    (oracle / "var/lib/dpkg/updates").mkdir()
    (oracle / "var/lib/dpkg/status").write_text("")
    # the oracle root has no shell: its postinst (exit 0) runs on the host
    run("dpkg", f"--root={oracle}", "--force-depends", "--force-script-chrootless", "-i",
        str(demo), str(tool))

    ours = tmp_path / "ours"
    ours.mkdir()
    log = tmp_path / "log"
    unpacked = []
    for index, deb in enumerate([tool, demo]):
        (tmp_path / f"work-{index}").mkdir()
        unpacked.append(dpkgdb.unpack(deb, ours, tmp_path / f"work-{index}", log))
    dpkgdb.register(ours, unpacked)

    expected = database(oracle)
    got = database(ours)
    assert got == expected
    # what the comparison covers, spelled out
    status = got["status"].decode()
    assert status.startswith("Package: aa-tool\nEssential: yes\nStatus: install ok installed\n")
    assert "Depends: libc6 (>= 2.34), libmd0\n" in status
    assert "Conffiles:\n /etc/demo/demo.conf " in status
    assert "info/lamina-demo:amd64.md5sums" in got  # generated: the package ships none
    assert got["info/lamina-demo:amd64.list"].decode().startswith("/.\n/etc\n")


def test_same_packages_give_the_same_bytes_in_any_order(tmp_path: Path) -> None:
    require_tool("dpkg-deb")
    debs = [build_deb(tmp_path, name, control, {f"usr/share/{name}/f": name})
            for name, control in (("demo", DEMO_CONTROL), ("tool", TOOL_CONTROL))]
    results = []
    for attempt, order in enumerate((debs, debs[::-1])):
        root = tmp_path / f"root-{attempt}"
        root.mkdir()
        unpacked = []
        for index, deb in enumerate(order):
            work = tmp_path / f"w-{attempt}-{index}"
            work.mkdir()
            unpacked.append(dpkgdb.unpack(deb, root, work, tmp_path / "log"))
        dpkgdb.register(root, unpacked)
        results.append(database(root))
    assert results[0] == results[1]
