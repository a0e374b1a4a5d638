#!/usr/bin/env python3
"""``lamina unpack`` versus ``umoci unpack`` on the same image in the local store.

Two images from one tree: ``unpleaf``, the tiny tree's leaf (busybox root, a files layer,
a script layer; about 1 MB), and ``unpminapp`` (a debootstrap bookworm minbase root plus the
same files layer; the debootstrap costs about a minute once). Each is built into the store
once; then each tool unpacks it into a fresh directory, three times, alternating, and the
best time of each is kept (the blobs are in the page cache after the first round).
``umoci unpack`` also writes the runtime bundle's config.json and an mtree manifest of the
rootfs, so ``umoci raw unpack`` (rootfs only) is timed as well, and so is ``lamina --version``
(the interpreter and imports every lamina command pays). Prints one line per image:
    unpack image=I layers=N image_bytes=B files=F lamina_s=A umoci_s=U ratio=A/U umoci_raw_s=R
        lamina_startup_s=S
"""

from __future__ import annotations

import json
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
IMAGES = ("unpleaf", "unpminapp")


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


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def startup() -> float:
    """lamina's fixed cost per command (interpreter, imports), best of three."""
    return min(timed([LAMINA, "--version"])[0] for _ in range(ROUNDS))


def bench_image(root: Path, out: Path, image: str, fixed: float) -> str:
    store = root / ".lamina/store"
    ref = f"{store}:{image}-amd64"
    record = json.loads((store / f"lamina/{image}/amd64.json").read_text())
    manifest = json.loads((store / "blobs/sha256" / record["manifest_digest"].split(":")[1])
                          .read_text())
    best = {"lamina": float("inf"), "umoci": float("inf"), "raw": float("inf")}
    files = 0
    for n in range(ROUNDS):
        seconds, stdout = timed([LAMINA, "-C", str(root), "unpack", image,
                                 str(out / f"lamina-{n}"), "--json"])
        best["lamina"] = min(best["lamina"], seconds)
        files = json.loads(stdout)["flats"][0]["summary"].get("files", 0)
        seconds, _ = timed(["umoci", "unpack", "--image", ref, str(out / f"umoci-{n}")])
        best["umoci"] = min(best["umoci"], seconds)
        seconds, _ = timed(["umoci", "raw", "unpack", "--image", ref, str(out / f"raw-{n}")])
        best["raw"] = min(best["raw"], seconds)
        for name in ("lamina", "umoci", "raw"):
            shutil.rmtree(out / f"{name}-{n}")
    return (f"unpack image={image} layers={len(manifest['layers'])} "
            f"image_bytes={record['size']} files={files} lamina_s={best['lamina']:.2f} "
            f"umoci_s={best['umoci']:.2f} ratio={best['lamina'] / best['umoci']:.2f} "
            f"umoci_raw_s={best['raw']:.2f} lamina_startup_s={fixed:.2f}")


def main() -> int:
    images = sys.argv[1:] or list(IMAGES)
    if shutil.which("umoci") is None:
        raise SystemExit("umoci not found: run scripts/setup")
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        root = tmp / "tree"
        make_tree(root)
        subprocess.run([LAMINA, "-C", str(root), "build", "--no-test", *images], check=True,
                       capture_output=True, timeout=1800)
        out = tmp / "out"
        out.mkdir()
        fixed = startup()
        for image in images:
            print(bench_image(root, out, image, fixed), flush=True)
    finally:
        remove_buildah_images(("localhost/lamina/unp",))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
