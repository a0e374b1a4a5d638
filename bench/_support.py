"""What the benches share: a throwaway loopback registry, and removing their buildah tags.

The registry is Debian's docker-registry (distribution 2.8) on 127.0.0.1 over plain HTTP,
which lamina's ``--insecure-loopback`` allows, so no certificates or credentials are involved.
Its access log (its stdout) is kept so a bench can count the requests one command made, and
its storage directory is exposed so a bench can see which blobs a push added.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

BLOBS = "docker/registry/v2/blobs/sha256"
REQUEST_RE = re.compile(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (/v2/\S*) HTTP/[0-9.]+" (\d{3}) ')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackRegistry:
    """``with LoopbackRegistry(dir) as reg:`` starts it (bounded wait) and always stops it."""

    def __init__(self, root: Path) -> None:
        if shutil.which("docker-registry") is None:
            raise SystemExit("docker-registry not found: run scripts/setup")
        self.root = root
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = root / "access.log"
        self.storage = root / "data"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LoopbackRegistry:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}},
            "http": {"addr": self.host, "secret": "lamina-bench"},
        }))
        with self.log.open("wb") as handle:
            self.process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                            stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://{self.host}/v2/", timeout=2)
                return self
            except requests.RequestException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise SystemExit("docker-registry did not start: "
                                     + self.log.read_text(errors="replace")[-500:]) from None
                time.sleep(0.2)

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log_offset(self) -> int:
        return self.log.stat().st_size

    def requests_since(self, offset: int) -> list[tuple[str, str, int]]:
        """(method, path, status) of every /v2/ request logged after ``offset``."""
        time.sleep(0.3)  # the access log line is written after the response
        with self.log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in REQUEST_RE.finditer(text)]

    def blobs(self) -> dict[str, int]:
        """Every blob the registry stores (layers, configs and manifests), digest -> size."""
        base = self.storage / BLOBS
        if not base.is_dir():
            return {}
        return {f"sha256:{data.parent.name}": data.stat().st_size
                for data in base.glob("*/*/data")}

    def blob_path(self, digest: str) -> Path:
        hexpart = digest.removeprefix("sha256:")
        return self.storage / BLOBS / hexpart[:2] / hexpart / "data"



def remove_buildah_images(prefixes: tuple[str, ...]) -> None:
    """Remove the containers-storage tags a bench made (lamina's local tags of its images and
    any raw ones), and only those: other builds share this storage."""
    listing = subprocess.run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"],
                             capture_output=True, text=True, timeout=120, check=False).stdout
    mine = [ref for ref in listing.split() if ref.startswith(prefixes)]
    if mine:
        subprocess.run(["buildah", "rmi", "-f", *mine], capture_output=True, timeout=600,
                       check=False)


def node_context(root: Path, image: str, dest: Path) -> tuple[Any, list[str]]:
    """Lay out ``image``'s build context for the host platform in ``dest`` exactly as lamina
    does (its Containerfile, the files its layers read, the pip cache link, the prepared
    root filesystem tarball), and return (its build unit, the raw ``buildah bud`` command
    building it into a tag of its own, without lamina's key annotation)."""
    from lamina import rootfs
    from lamina.builders.base import pip_cache, write_context
    from lamina.external import ExternalResolver
    from lamina.layerkinds import CA_SECRET_ID
    from lamina.plan import make_plan
    from lamina.platforms import host_platform
    from lamina.recipe import load_recipe
    from lamina.settings import settings_for
    from lamina.store import Store

    recipe = load_recipe(root)
    settings = settings_for(recipe)
    platform = host_platform()
    entries = make_plan(recipe, Store(settings.store), settings.epoch, [image], [platform],
                        ExternalResolver(settings.cache))
    unit = next(e for e in entries if e.image == image).unit
    if unit is None:
        raise SystemExit(f"{image} cannot be rendered for {platform}")
    tars = {r.context_name: rootfs.prepare(r, settings.cache / "rootfs", unit.epoch,
                                           dest.parent / f"{image}-rootfs.log")
            for r in unit.rootfs_requests}
    write_context(unit, dest, tars, pip_cache(settings))
    command = ["buildah", "bud", "--isolation", "chroot", "--layers", "--no-cache",
               "--timestamp", str(unit.epoch), "--platform", platform.name, "--format", "oci",
               "-f", str(dest / "Containerfile"), "-t", f"localhost/bench-raw/{image}:latest",
               "--build-arg", f"SOURCE_DATE_EPOCH={unit.epoch}", "--pull-never"]
    for name, value in sorted(unit.build_args.items()):
        command += ["--build-arg", f"{name}={value}"]
    if settings.ca_bundle is not None:  # LAMINA_CA_BUNDLE, as lamina mounts it
        command += ["--secret", f"id={CA_SECRET_ID},src={settings.ca_bundle}"]
    return unit, [*command, str(dest)]


def timed(command: list[str], timeout: float = 3600) -> float:
    """Seconds ``command`` took; its failure ends the bench with its output."""
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start
