"""Small images for ``lamina exec`` / ``lamina run``, crafted as OCI layouts and unpacked with
``lamina unpack``: a static busybox from the host (Debian's busybox-static) as ``/bin/sh`` and
the applets, or the host's dash or bash with the libraries they load."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from lamina.cli import main
from tests.unpack.oci import Entry, d, f, gz, single, sym, tar_bytes

APPLETS = ("sh", "cat", "echo", "env", "ls", "mkdir", "printenv", "pwd", "touch", "id", "true",
           "false", "test", "kill", "stat", "sleep", "grep", "readlink", "whoami", "md5sum",
           "wc", "head")
PASSWD = "root:x:0:0:image root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def _host_file(path: str, as_name: str | None = None) -> Entry:
    return f((as_name or path).lstrip("/"), Path(path).read_bytes(), mode=0o755)


def _parents(path: str, seen: set[str]) -> list[Entry]:
    out = []
    parts = path.strip("/").split("/")[:-1]
    for i in range(1, len(parts) + 1):
        p = "/".join(parts[:i])
        if p not in seen:
            seen.add(p)
            out.append(d(p))
    return out


def busybox_entries(extra: list[Entry] | None = None) -> list[Entry]:
    """A root with busybox, /etc/passwd and /etc/group, then ``extra``."""
    entries = [d("bin"), d("etc"), d("usr"), d("usr/bin"), _host_file("/bin/busybox")]
    entries += [sym(f"bin/{name}", "busybox") for name in APPLETS]
    entries += [f("etc/passwd", PASSWD), f("etc/group", GROUP)]
    return entries + (extra or [])


def shell_entries(shell: str) -> list[Entry]:
    """The host's ``shell`` as /bin/sh with the libraries ldd names, busybox for the rest."""
    libs = [line.split()[-2] if "=>" in line else line.split()[0]
            for line in subprocess.run(["ldd", shell], capture_output=True, text=True,
                                       check=True, timeout=30).stdout.splitlines()
            if "/" in line]
    entries = busybox_entries()
    entries = [e for e in entries if e.name != "bin/sh"]
    seen = {"bin", "etc", "usr", "usr/bin"}
    for lib in libs:
        real = os.path.realpath(lib)
        entries += _parents(lib, seen)
        entries.append(f(lib.lstrip("/"), Path(real).read_bytes(), mode=0o755))
    entries.append(_host_file(os.path.realpath(shell), "/bin/sh"))
    return entries


def unpacked(tmp: Path, entries: list[Entry], *, env: list[str] | None = None,
             entrypoint: list[str] | None = None, cmd: list[str] | None = None,
             workdir: str = "", name: str = "img") -> Path:
    """``entries`` as a one-layer image ``localhost/<name>:latest``, unpacked with
    ``lamina unpack``; returns the public path."""
    layout = tmp / f"{name}-layout"
    single(layout, [gz(tar_bytes(entries))], ref=name, env=env, entrypoint=entrypoint, cmd=cmd,
           workdir=workdir)
    out = tmp / f"{name}-unpacked"
    assert main(["unpack", f"oci:{layout}:{name}", str(out)]) == 0
    return out / f"localhost/{name}:latest"
