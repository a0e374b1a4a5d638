#!/usr/bin/env python3
"""How `lamina plan` grows with the tree: synthetic trees of 50, 200 and 1000 images.

Each tree is a root plus a fan of chains (depth 5), every image with one small files layer,
on two platforms, with no registry. Prints one line per size:
    plan_scaling images=N nodes=2N seconds=S per_node_ms=M cpu_seconds=C load=L
(``cpu_seconds``: this process's CPU time for the same work, less disturbed by other jobs on
a busy machine than the wall time; ``load``: the 1-minute load average when it ended.)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lamina.plan import make_plan
from lamina.recipe import load_recipe
from lamina.store import Store

ROOTFS = "kind: rootfs\ndebs:\n  packages: [busybox-static]\n  symlinks: {bin/sh: busybox}\n"


def make_tree(root: Path, images: int) -> None:
    (root / "recipe.yaml").write_text("platforms: [linux/amd64, linux/arm64]\n")
    (root / "layers/root").mkdir(parents=True)
    (root / "layers/root/layer.yaml").write_text(ROOTFS)
    (root / "images/n0").mkdir(parents=True)
    (root / "images/n0/image.yaml").write_text("parent: scratch\nlayers: [root]\n")
    for i in range(1, images):
        layer = root / f"layers/l{i}"
        (layer / "files").mkdir(parents=True)
        (layer / "files/data.txt").write_text(f"payload {i}\n")
        (layer / "layer.yaml").write_text("kind: files\nsource: files\ndest: /opt/data\n")
        parent = "n0" if i % 5 == 1 else f"n{i - 1}"
        (root / f"images/n{i}").mkdir(parents=True)
        (root / f"images/n{i}/image.yaml").write_text(f"parent: {parent}\nlayers: [l{i}]\n")


def main() -> int:
    sizes = [int(a) for a in sys.argv[1:]] or [50, 200, 1000]
    for size in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
        try:
            make_tree(tmp, size)
            start = time.perf_counter()
            cpu_start = time.process_time()
            recipe = load_recipe(tmp)
            entries = make_plan(recipe, Store(tmp / ".lamina/store"), 1_700_000_000)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            print(f"plan_scaling images={size} nodes={len(entries)} seconds={seconds:.3f} "
                  f"per_node_ms={1000 * seconds / len(entries):.2f} cpu_seconds={cpu:.3f} "
                  f"load={os.getloadavg()[0]:.1f}")
        finally:
            shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
