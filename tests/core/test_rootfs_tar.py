"""The rootfs tar in the cache: the same tree gives the same bytes, and an interrupted pack
leaves neither a tar nor a temporary file (the next run would otherwise take a torn tar as
the cached rootfs)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from lamina.rootfs import deterministic_tar


def _tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_text("#!/bin/sh\n")
    os.chmod(root / "usr/bin/tool", 0o755)
    os.symlink("usr/bin", root / "bin")
    return root


def test_the_same_tree_gives_the_same_bytes_and_mtimes_are_clamped(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    os.utime(root / "etc/os-release", (2_000_000_000, 2_000_000_000))
    first, second = tmp_path / "cache/a.tar", tmp_path / "cache/b.tar"
    deterministic_tar(root, first, 1_700_000_000)
    deterministic_tar(root, second, 1_700_000_000)
    assert hashlib.sha256(first.read_bytes()).digest() == \
        hashlib.sha256(second.read_bytes()).digest()
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["bin", "etc", "etc/os-release", "usr", "usr/bin",
                                  "usr/bin/tool"]
        assert tar.getmember("etc/os-release").mtime == 1_700_000_000
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a.tar", "b.tar"]


def test_a_pack_interrupted_midway_leaves_no_tar_and_no_temporary_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    with open(root / "usr/bin/huge", "wb") as sparse:  # seconds to read, no disk used
        sparse.truncate(8 << 30)
    out = tmp_path / "cache/rootfs.tar"
    out.parent.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from lamina.rootfs import deterministic_tar; "
         "deterministic_tar(Path(sys.argv[1]), Path(sys.argv[2]), 1700000000)",
         str(root), str(out)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(out.parent.iterdir()):  # the pack has started writing
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        child.wait(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode != 0
    assert list(out.parent.iterdir()) == []
