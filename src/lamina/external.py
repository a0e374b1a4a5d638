"""External parents: images outside the tree, pinned by digest.

A digest may name an index; the key of a child must use the digest of the manifest for
*its* platform, so that the plan changes when (and only when) that platform's base does.
Digest-pinned content never changes, so resolutions are cached for good.
"""

from __future__ import annotations

import json
from pathlib import Path

from lamina.platforms import Platform
from lamina.procs import capture
from lamina.recipe import ExternalParent

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


class ExternalResolver:
    def __init__(self, cache_dir: Path | None, tls_verify: bool = True) -> None:
        self.cache_dir = cache_dir
        self.tls_verify = tls_verify

    def _raw(self, parent: ExternalParent) -> dict[str, object]:
        cache = None
        if self.cache_dir is not None:
            cache = self.cache_dir / "external" / (parent.digest.replace(":", "-") + ".json")
            if cache.exists():
                data: dict[str, object] = json.loads(cache.read_text())
                return data
        verify = f"--tls-verify={str(self.tls_verify).lower()}"
        proc = capture(["skopeo", "inspect", "--raw", verify,
                        f"docker://{parent.repository}@{parent.digest}"],
                       what=f"resolve {parent.reference}")
        data = json.loads(proc.stdout)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(data))
        return data

    def platform_digest(self, parent: ExternalParent, platform: Platform) -> str | None:
        raw = self._raw(parent)
        if raw.get("mediaType") not in INDEX_TYPES and "manifests" not in raw:
            return parent.digest  # a single-platform manifest: trust the pin
        manifests = raw.get("manifests")
        for desc in manifests if isinstance(manifests, list) else []:
            plat = desc.get("platform") or {}
            if plat.get("os") == platform.os and plat.get("architecture") == platform.arch:
                return str(desc["digest"])
        return None
