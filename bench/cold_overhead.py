#!/usr/bin/env python3
"""lamina's own overhead on a cold build: the tiny tree versus raw buildah on the same work.

Both sides build the same Containerfiles (the ones lamina renders) in the same order from an
empty store; the rootfs tarball is prepared once beforehand so neither side pays for apt.
lamina additionally stores each image in the OCI layout and records it; tests are skipped on
both sides. Prints:
    cold_overhead lamina_s=A buildah_s=B ratio=A/B
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        root = tmp / "tiny"
        shutil.copytree(HERE / "tests/trees/tiny", root,
                        ignore=shutil.ignore_patterns(".lamina"))
        # warm-up: prepares the rootfs cache and renders the contexts
        subprocess.run([LAMINA, "-C", str(root), "build", "--no-test"], check=True,
                       capture_output=True)
        shutil.rmtree(root / ".lamina/store")
        start = time.perf_counter()
        subprocess.run([LAMINA, "-C", str(root), "build", "--no-test", "-j", "1"], check=True,
                       capture_output=True)
        lamina_s = time.perf_counter() - start

        start = time.perf_counter()
        for name in ("base", "app", "leaf"):
            context = root / ".lamina/work" / f"{name}-amd64"
            containerfile = (context / "Containerfile").read_text()
            parent = containerfile.splitlines()[2].split()[1]
            tag = f"localhost/bench/{name}"
            containerfile = containerfile.replace(f"FROM {parent}", "FROM " + (
                parent if parent == "scratch" else "localhost/bench/" + parent.split("/")[2]
                .split(":")[0]))
            (context / "Containerfile.raw").write_text(containerfile)
            subprocess.run(["buildah", "bud", "--isolation", "chroot", "--layers", "--no-cache",
                            "--timestamp", "1700000000", "--build-arg",
                            "SOURCE_DATE_EPOCH=1700000000",
                            "-f", str(context / "Containerfile.raw"),
                            "-t", tag, str(context)], check=True, capture_output=True)
        buildah_s = time.perf_counter() - start
        print(f"cold_overhead lamina_s={lamina_s:.2f} buildah_s={buildah_s:.2f} "
              f"ratio={lamina_s / buildah_s:.2f}")
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
