#!/usr/bin/env python3
"""lamina's own overhead on a cold build versus raw buildah doing the same work.

Two cases, each from an empty store, tests skipped on both sides:
- the tiny tree (tests/trees/tiny: base, app, leaf), all three nodes;
- the shipped tree's ``framework`` node (Python and the Scikit-HEP stack) on top of an
  ``os-base`` already built into the bench's store.
lamina builds with ``lamina build --no-test -j 1`` (build, export into the store writing only
new layers, hygiene, the package probe, the record). Raw buildah builds the same
Containerfiles from the same contexts (laid out by lamina's own code, so the same files and
the same pip wheel cache) with ``buildah bud`` and stores each image with ``buildah push``
into an OCI layout. Root filesystems are prepared once beforehand so neither side pays for
debootstrap, and the pip cache is warm for both. Prints one line per case:
    cold_overhead case=C lamina_s=A buildah_s=B ratio=A/B startup_s=S ratio_after_startup=
(startup_s: ``lamina --version`` measured just before, the CLI's start-up that every
lamina command pays once, owned by the start-up work of issue 13; ratio_after_startup is
(A - S) / B.)
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _support import node_context, remove_buildah_images, timed

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))
RAW = "localhost/bench-raw/"


def lamina(root: Path, *args: str) -> float:
    """``lamina build --no-test`` for the host platform only (the shipped tree has three)."""
    from lamina.platforms import host_platform

    return timed([LAMINA, "-C", str(root), "build", "--no-test", "-j", "1", "--platform",
                  host_platform().name, *args], timeout=7200)


def raw(root: Path, images: list[str], work: Path) -> float:
    """Raw bud + push of each image, parents first; a parent built here is used by tag."""
    seconds = 0.0
    layout = work / "raw-store"
    for image in images:
        context = work / f"{image}-context"
        unit, bud = node_context(root, image, context)
        containerfile = context / "Containerfile"
        parent = unit.image.parent_name
        if parent in images:
            containerfile.write_text(containerfile.read_text().replace(
                f"FROM {unit.parent_ref}", f"FROM {RAW}{parent}:latest", 1))
        seconds += timed(bud)
        seconds += timed(["buildah", "push", "--quiet", "--format", "oci",
                          f"{RAW}{image}:latest", f"oci:{layout}:{image}"])
    return seconds


def startup() -> float:
    return min(timed([LAMINA, "--version"]) for _ in range(3))


def line(case: str, lamina_s: float, buildah_s: float, startup_s: float) -> str:
    return (f"cold_overhead case={case} lamina_s={lamina_s:.2f} buildah_s={buildah_s:.2f} "
            f"ratio={lamina_s / buildah_s:.2f} startup_s={startup_s:.2f} "
            f"ratio_after_startup={(lamina_s - startup_s) / buildah_s:.2f}")


def tiny(tmp: Path) -> str:
    root = tmp / "tiny"
    shutil.copytree(HERE / "tests/trees/tiny", root, ignore=shutil.ignore_patterns(".lamina"))
    lamina(root)  # warm-up: the rootfs cache
    shutil.rmtree(root / ".lamina/store")
    startup_s = startup()
    lamina_s = lamina(root)
    buildah_s = raw(root, ["base", "app", "leaf"], tmp / "tiny-raw")
    return line("tiny", lamina_s, buildah_s, startup_s)


def framework(tmp: Path) -> str:
    # the shipped tree's state (its rootfs and pip caches, warm after one build), a new store
    os.environ["LAMINA_STORE"] = str(tmp / "store")
    lamina(HERE, "os-base")
    startup_s = startup()
    lamina_s = lamina(HERE, "framework")
    buildah_s = raw(HERE, ["framework"], tmp / "framework-raw")
    return line("framework", lamina_s, buildah_s, startup_s)


def main() -> int:
    cases = sys.argv[1:] or ["tiny", "framework"]
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        for case in cases:
            start = time.perf_counter()
            line = {"tiny": tiny, "framework": framework}[case](tmp)
            print(line, flush=True)
            sys.stderr.write(f"({case}: {time.perf_counter() - start:.0f}s in all)\n")
    finally:
        remove_buildah_images((RAW,))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
