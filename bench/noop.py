#!/usr/bin/env python3
"""A no-op publish: 50 images x 2 platforms all in the registry already, versus buildah's cache.

A synthetic tree (a busybox root, then chains of depth 5 of small files layers, every fifth
image a script layer that runs under qemu on arm64) is built and pushed once, under its key
tags, to a loopback docker-registry. Then, timed:

* ``lamina build --push --to 127.0.0.1:PORT/bench --insecure-loopback`` with the store that
  built it (no release tag, so only key tags would be pushed; all are there, so nothing is
  built or uploaded), and the same with an empty store, as a fresh CI runner would have it;
* raw ``buildah bud --layers`` on the same Containerfiles (``lamina render``'s, in contexts
  written by lamina's own ``write_context``: a build removes its context when it is done),
  every node in order, with buildah's layer cache warm from a first pass.

Both sides do one untimed warm-up run first. The registry's access log gives the request
count of each no-op (and shows no blob was uploaded). Prints:
    noop store=warm images=50 nodes=100 lamina_s=A buildah_s=B ratio=A/B requests=R uploads=0
    noop store=empty images=50 nodes=100 lamina_s=A buildah_s=B ratio=A/B requests=R uploads=0
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import LoopbackRegistry, remove_buildah_images

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))
PLATFORMS = ("linux/amd64", "linux/arm64")
EPOCH = 1700000000
PREFIX = "noop"  # image names, so this bench's buildah tags are easy to find and remove
RAW_REPO = "localhost/lamina-bench-noop"


def make_tree(root: Path, images: int) -> None:
    """Root n0 (busybox), then chains of depth 5; the last image of each chain runs a script."""
    root.mkdir(parents=True)
    (root / "recipe.yaml").write_text(
        f"name: bench-noop\nplatforms: [{', '.join(PLATFORMS)}]\n"
        f"source_date_epoch: {EPOCH}\njobs: 2\n")
    shutil.copytree(HERE / "tests/trees/tiny/layers/busybox-root", root / "layers/root")
    (root / f"images/{PREFIX}0").mkdir(parents=True)
    (root / f"images/{PREFIX}0/image.yaml").write_text("parent: scratch\nlayers: [root]\n")
    for i in range(1, images):
        layer = root / f"layers/l{i}"
        if i % 5 == 0:
            layer.mkdir(parents=True)
            (layer / "build.sh").write_text(
                f"#!/bin/sh\nset -eu\nmkdir -p /opt/steps\nuname -m > /opt/steps/{i}.txt\n")
            (layer / "layer.yaml").write_text("kind: script\nscript: build.sh\n")
        else:
            (layer / "files").mkdir(parents=True)
            (layer / f"files/data{i}.txt").write_text(f"payload {i}\n")
            (layer / "layer.yaml").write_text("kind: files\nsource: files\ndest: /opt/data\n")
        parent = f"{PREFIX}0" if i % 5 == 1 else f"{PREFIX}{i - 1}"
        (root / f"images/{PREFIX}{i}").mkdir(parents=True)
        (root / f"images/{PREFIX}{i}/image.yaml").write_text(
            f"parent: {parent}\nlayers: [l{i}]\n")


def lamina(root: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([LAMINA, "-C", str(root), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"lamina {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def noop(root: Path, registry: LoopbackRegistry) -> tuple[float, int, int]:
    """Seconds, registry requests and blob uploads of one no-op ``build --push``."""
    offset = registry.log_offset()
    start = time.perf_counter()
    proc = lamina(root, "build", "--push", "--to", f"{registry.host}/bench",
                  "--insecure-loopback", "--json", timeout=600)
    seconds = time.perf_counter() - start
    report = json.loads(proc.stdout)
    done = [n for n in report["nodes"] if n["outcome"] not in ("up-to-date", "excluded")]
    if done or report["key_tags"]:
        raise SystemExit(f"not a no-op: built {len(done)}, pushed {report['key_tags']}")
    logged = registry.requests_since(offset)
    uploads = sum(1 for method, path, _ in logged
                  if method in ("PUT", "PATCH", "POST") and "/blobs/" in path)
    return seconds, len(logged), uploads


def write_contexts(root: Path, contexts: Path) -> None:
    """Each node's build context as ``lamina build`` writes it (rootfs tars from its cache)."""
    from lamina.builders.base import write_context
    from lamina.plan import make_plan
    from lamina.recipe import load_recipe
    from lamina.rootfs import prepare
    from lamina.settings import settings_for
    from lamina.store import Store

    recipe = load_recipe(root)
    settings = settings_for(recipe)
    for entry in make_plan(recipe, Store(settings.store), settings.epoch):
        unit = entry.unit
        assert unit is not None
        tars = {request.context_name: prepare(request, settings.cache / "rootfs", unit.epoch,
                                              contexts / "rootfs.log")
                for request in unit.rootfs_requests}
        context = contexts / f"{unit.name}-{unit.platform.arch}"
        context.mkdir(parents=True)
        write_context(unit, context, tars)


def buildah_pass(root: Path, images: int) -> float:
    """Seconds for buildah to go through every node's Containerfile, parents first."""
    start = time.perf_counter()
    for platform in PLATFORMS:
        arch = platform.split("/")[1]
        for i in range(images):
            context = root / f"contexts/{PREFIX}{i}-{arch}"
            subprocess.run([
                "buildah", "bud", "--isolation", "chroot", "--layers",
                "--timestamp", str(EPOCH), "--platform", platform, "--format", "oci",
                "-f", str(context / "Containerfile"), "-t", f"{RAW_REPO}/{PREFIX}{i}:{arch}",
                "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}", "--pull-never", str(context),
            ], check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> int:
    images = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        root = tmp / "tree"
        make_tree(root, images)
        with LoopbackRegistry(tmp / "registry") as registry:
            # publish everything once (key tags), then one untimed no-op
            lamina(root, "build", "--push", "--to", f"{registry.host}/bench",
                   "--insecure-loopback", timeout=3600)
            noop(root, registry)
            lamina_s, requests, uploads = noop(root, registry)

            # the same Containerfiles lamina renders, straight to buildah
            rendered = lamina(root, "render", f"{PREFIX}{images - 1}", "--platform",
                              PLATFORMS[1], timeout=120).stdout
            write_contexts(root, root / "contexts")
            context = root / f"contexts/{PREFIX}{images - 1}-arm64/Containerfile"
            if rendered != context.read_text():
                raise SystemExit(f"{context} differs from lamina render")
            buildah_pass(root, images)  # warms buildah's layer cache
            buildah_s = buildah_pass(root, images)

            nodes = images * len(PLATFORMS)
            print(f"noop store=warm images={images} nodes={nodes} lamina_s={lamina_s:.2f} "
                  f"buildah_s={buildah_s:.2f} ratio={lamina_s / buildah_s:.3f} "
                  f"requests={requests} uploads={uploads}", flush=True)

            # a fresh runner: nothing local, everything in the registry
            store = root / ".lamina/store"
            store.rename(root / ".lamina/store-built")
            noop(root, registry)
            empty_s, requests, uploads = noop(root, registry)
            print(f"noop store=empty images={images} nodes={nodes} lamina_s={empty_s:.2f} "
                  f"buildah_s={buildah_s:.2f} ratio={empty_s / buildah_s:.3f} "
                  f"requests={requests} uploads={uploads}", flush=True)
    finally:
        remove_buildah_images((f"{RAW_REPO}/", f"localhost/lamina/{PREFIX}"))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
