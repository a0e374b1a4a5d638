#!/usr/bin/env python3
"""What a release uploads when only the top analysis layer changed.

A small amd64 tree (busybox root -> framework with a 4 MiB incompressible files layer -> a
script layer -> analysis with a few KiB of code) is released as v1 with
``lamina build --push --tag v1`` to a loopback docker-registry; then only the analysis files
change and ``--tag v2`` is released. What each release added to the registry is read from the
registry itself: the blob uploads it accepted (``PUT .../blobs/uploads/...?digest=``, from its
access log) and every new blob in its storage (layers, configs and the manifests and indexes
it stores as blobs too). The analysis layer's own compressed size comes from the store record
``<store>/lamina/incanalysis/amd64.json``. Prints one line per release:
    incremental tag=T images=4 blob_uploads=N blob_bytes=B layer_bytes=LB manifest_puts=M
        manifest_bytes=MB uploaded_bytes=B+MB image_bytes=I top_layer_bytes=L ratio=(B+MB)/L
(blob_bytes: layers, configs and the package reports lamina attaches to each published image;
layer_bytes: the layers among them; image_bytes: the analysis image's compressed layers;
top_layer_bytes: its own layer.)
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _support import LoopbackRegistry, remove_buildah_images

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))
EPOCH = 1700000000
IMAGES = ("incbase", "incframework", "incml", "incanalysis")


def make_tree(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "recipe.yaml").write_text(
        f"name: bench-incremental\nplatforms: [linux/amd64]\nsource_date_epoch: {EPOCH}\n")
    shutil.copytree(HERE / "tests/trees/tiny/layers/busybox-root", root / "layers/root")
    framework = root / "layers/framework/files"
    framework.mkdir(parents=True)
    (framework / "libframework.so").write_bytes(random.Random(7).randbytes(4 << 20))
    (root / "layers/framework/layer.yaml").write_text(
        "kind: files\nsource: files\ndest: /opt/framework\n")
    (root / "layers/ml").mkdir(parents=True)
    (root / "layers/ml/build.sh").write_text(
        "#!/bin/sh\nset -eu\nmkdir -p /opt/ml\necho model > /opt/ml/model.txt\n")
    (root / "layers/ml/layer.yaml").write_text("kind: script\nscript: build.sh\n")
    (root / "layers/analysis/files").mkdir(parents=True)
    (root / "layers/analysis/layer.yaml").write_text(
        "kind: files\nsource: files\ndest: /opt/analysis\n")
    write_analysis(root, 1)
    layers = ("root", "framework", "ml", "analysis")
    parent = "scratch"
    for image, layer in zip(IMAGES, layers, strict=True):
        (root / f"images/{image}").mkdir(parents=True)
        (root / f"images/{image}/image.yaml").write_text(
            f"parent: {parent}\nlayers: [{layer}]\n")
        parent = image


def write_analysis(root: Path, version: int) -> None:
    """A few KiB of analysis code; ``version`` changes one constant in it."""
    lines = [f"CUT_{i} = {i * 0.5}  # selection threshold {i}" for i in range(200)]
    lines.append(f"VERSION = {version}")
    (root / "layers/analysis/files/analysis.py").write_text("\n".join(lines) + "\n")


def release(root: Path, registry: LoopbackRegistry, tag: str) -> str:
    before = registry.blobs()
    offset = registry.log_offset()
    proc = subprocess.run([LAMINA, "-C", str(root), "build", "--push", "--to",
                           f"{registry.host}/bench", "--insecure-loopback", "--tag", tag],
                          capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"lamina build --push --tag {tag} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    logged = registry.requests_since(offset)
    added = {d: s for d, s in registry.blobs().items() if d not in before}
    uploaded = {path.rsplit("digest=", 1)[1].split("&")[0].replace("%3A", ":")
                for method, path, status in logged
                if method == "PUT" and "/blobs/uploads/" in path and status == 201}
    blob_bytes = sum(added.get(d, 0) for d in uploaded)
    layer_bytes = sum(added.get(d, 0) for d in uploaded if is_gzip(registry.blob_path(d)))
    manifest_puts = sum(1 for method, path, status in logged
                        if method == "PUT" and "/manifests/" in path and status == 201)
    manifest_bytes = sum(s for d, s in added.items() if d not in uploaded)
    record = json.loads((root / ".lamina/store/lamina/incanalysis/amd64.json").read_text())
    top = int(record["layers"][-1]["size"])
    total = blob_bytes + manifest_bytes
    return (f"incremental tag={tag} images={len(IMAGES)} blob_uploads={len(uploaded)} "
            f"blob_bytes={blob_bytes} layer_bytes={layer_bytes} manifest_puts={manifest_puts} "
            f"manifest_bytes={manifest_bytes} uploaded_bytes={total} "
            f"image_bytes={record['size']} top_layer_bytes={top} ratio={total / top:.2f}")


def is_gzip(path: Path) -> bool:
    """Layers are gzip; configs (and the manifests a registry also stores as blobs) JSON."""
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        root = tmp / "tree"
        make_tree(root)
        with LoopbackRegistry(tmp / "registry") as registry:
            lines = [release(root, registry, "v1")]
            write_analysis(root, 2)
            lines.append(release(root, registry, "v2"))
        for line in lines:
            print(line, flush=True)
    finally:
        remove_buildah_images(("localhost/lamina/inc",))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
