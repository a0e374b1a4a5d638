#!/usr/bin/env python3
"""``lamina unpack`` versus ``umoci unpack`` on the same image in the local store: time and
peak memory.

Images: ``unpleaf``, the tiny tree's leaf (busybox root, a files layer, a script layer;
about 1 MB), and ``unpminapp`` (a debootstrap bookworm minbase root plus the same files layer,
about 50 MB; the debootstrap costs about a minute once), both built into a private tree; and
``framework``, the shipped tree's framework image (about 410 MB compressed), taken from the
repository's own store and built there first if missing (``lamina build framework --platform
linux/amd64 --no-test``, about 10 minutes). Each tool unpacks each image into a fresh
directory, three times, alternating, and the best time of each is kept (the blobs are in the
page cache after the first round). Peak memory is each run's ``ru_maxrss`` from
``os.wait4`` on that very process (not on this script, whose own size would count).
``umoci unpack`` also writes the runtime bundle's config.json and an mtree manifest of the
rootfs, so ``umoci raw unpack`` (rootfs only) is timed as well, and so is ``lamina --version``
(the interpreter and imports every lamina command pays). Prints one line per image:
    unpack image=I layers=N image_bytes=B files=F lamina_s=A umoci_s=U ratio=A/U umoci_raw_s=R
        lamina_startup_s=S lamina_rss_mb=L umoci_rss_mb=M rss_ratio=L/M
        lamina_startup_rss_mb=V (what ``lamina --version`` alone takes)
Usage: bench/unpack.py [IMAGE ...] (default: unpleaf unpminapp framework)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import remove_buildah_images

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))
ROUNDS = 3
IMAGES = ("unpleaf", "unpminapp", "framework")
SHIPPED = ("framework",)  # images of the repository's own tree, from its own store


def make_tree(root: Path) -> None:
    """The tiny tree's layers under this bench's own image names (buildah tags are shared
    with every other build on the host, and this bench removes its own at the end)."""
    shutil.copytree(HERE / "tests/trees/tiny", root, ignore=shutil.ignore_patterns(
        ".lamina", "images"))
    (root / "layers/minbase").mkdir()
    (root / "layers/minbase/layer.yaml").write_text(
        "kind: rootfs\ndebootstrap:\n  suite: bookworm\n  variant: minbase\n")
    for image, parent, layer in (("unpbase", "scratch", "busybox-root"),
                                 ("unpapp", "unpbase", "hello-files"),
                                 ("unpleaf", "unpapp", "hello-script"),
                                 ("unpminbase", "scratch", "minbase"),
                                 ("unpminapp", "unpminbase", "hello-files")):
        (root / f"images/{image}").mkdir(parents=True)
        (root / f"images/{image}/image.yaml").write_text(
            f"parent: {parent}\nlayers: [{layer}]\n")


def timed(cmd: list[str]) -> tuple[float, str, int]:
    """Wall seconds, stdout and peak RSS (bytes) of one run of ``cmd``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        deadline = time.monotonic() + 1800
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): "
                             f"{err.read()[-2000:].decode(errors='replace')}")
        return seconds, out.read().decode(), usage.ru_maxrss * 1024


def startup() -> tuple[float, int]:
    """lamina's fixed cost per command (interpreter, imports): best time of three, and the
    peak RSS that costs before any work."""
    runs = [timed([LAMINA, "--version"]) for _ in range(ROUNDS)]
    return min(r[0] for r in runs), max(r[2] for r in runs)


def bench_image(root: Path, out: Path, image: str, fixed: tuple[float, int]) -> str:
    store = root / ".lamina/store"
    ref = f"{store}:{image}-amd64"
    record = json.loads((store / f"lamina/{image}/amd64.json").read_text())
    manifest = json.loads((store / "blobs/sha256" / record["manifest_digest"].split(":")[1])
                          .read_text())
    best = {"lamina": float("inf"), "umoci": float("inf"), "raw": float("inf")}
    rss = {"lamina": 0, "umoci": 0}
    files = 0
    for n in range(ROUNDS):
        seconds, stdout, peak = timed([LAMINA, "-C", str(root), "unpack", image,
                                       str(out / f"lamina-{n}"), "--json", "--branch",
                                       "master"])
        best["lamina"] = min(best["lamina"], seconds)
        rss["lamina"] = max(rss["lamina"], peak)
        files = json.loads(stdout)["flats"][0]["summary"].get("files", 0)
        seconds, _, peak = timed(["umoci", "unpack", "--image", ref, str(out / f"umoci-{n}")])
        best["umoci"] = min(best["umoci"], seconds)
        rss["umoci"] = max(rss["umoci"], peak)
        seconds, _, _ = timed(["umoci", "raw", "unpack", "--image", ref,
                               str(out / f"raw-{n}")])
        best["raw"] = min(best["raw"], seconds)
        for name in ("lamina", "umoci", "raw"):
            subprocess.run(["chmod", "-R", "u+rwX", str(out / f"{name}-{n}")], check=False)
            shutil.rmtree(out / f"{name}-{n}")
    mib = 1 << 20
    return (f"unpack image={image} layers={len(manifest['layers'])} "
            f"image_bytes={record['size']} files={files} lamina_s={best['lamina']:.2f} "
            f"umoci_s={best['umoci']:.2f} ratio={best['lamina'] / best['umoci']:.2f} "
            f"umoci_raw_s={best['raw']:.2f} lamina_startup_s={fixed[0]:.2f} "
            f"lamina_rss_mb={rss['lamina'] / mib:.0f} umoci_rss_mb={rss['umoci'] / mib:.0f} "
            f"rss_ratio={rss['lamina'] / rss['umoci']:.2f} "
            f"lamina_startup_rss_mb={fixed[1] / mib:.0f}")


def ensure_shipped(image: str) -> None:
    """The shipped tree's image in the repository's store, built once if it is not there."""
    if not (HERE / f".lamina/store/lamina/{image}/amd64.json").is_file():
        subprocess.run([LAMINA, "-C", str(HERE), "build", image, "--platform", "linux/amd64",
                        "--no-test"], check=True, capture_output=True, timeout=3600)


def main() -> int:
    images = sys.argv[1:] or list(IMAGES)
    if shutil.which("umoci") is None:
        raise SystemExit("umoci not found: run scripts/setup")
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        root = tmp / "tree"
        make_tree(root)
        private = [i for i in images if i not in SHIPPED]
        if private:
            subprocess.run([LAMINA, "-C", str(root), "build", "--no-test", *private],
                           check=True, capture_output=True, timeout=1800)
        out = tmp / "out"
        out.mkdir()
        fixed = startup()
        for image in images:
            if image in SHIPPED:
                ensure_shipped(image)
            print(bench_image(HERE if image in SHIPPED else root, out, image, fixed),
                  flush=True)
    finally:
        remove_buildah_images(("localhost/lamina/unp",))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
