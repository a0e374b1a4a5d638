"""External parents: images outside the tree, pinned by digest.

A digest may name an index; the key of a child must use the digest of the manifest for
*its* platform, so that the plan changes when (and only when) that platform's base does.
Digest-pinned content never changes, so resolutions are cached for good (skopeo checks the
manifest it fetches by digest against that digest). skopeo gets a private auth file with only
the parent repository's credentials (:mod:`lamina.credentials`; the command's own
``LAMINA_REGISTRY_*`` are for its target, not for parents) and a whole-command deadline.
"""

from __future__ import annotations

import json
from pathlib import Path

from lamina import atomic
from lamina.credentials import CredentialStore
from lamina.errors import ToolError
from lamina.netloc import http_timeout
from lamina.platforms import Platform
from lamina.procs import capture
from lamina.recipe import ExternalParent

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def _read_cache(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # absent or torn: resolve again
    return data if isinstance(data, dict) else None


class ExternalResolver:
    def __init__(self, cache_dir: Path | None, tls_verify: bool = True) -> None:
        self.cache_dir = cache_dir
        self.tls_verify = tls_verify

    def _raw(self, parent: ExternalParent) -> dict[str, object]:
        cache = None
        if self.cache_dir is not None:
            cache = self.cache_dir / "external" / (parent.digest.replace(":", "-") + ".json")
            cached = _read_cache(cache)
            if cached is not None:
                return cached
        verify = f"--tls-verify={str(self.tls_verify).lower()}"
        registry, _, repository = parent.repository.partition("/")
        with CredentialStore.load().skopeo_authfile(registry, repository) as auth:
            proc = capture(["skopeo", f"--command-timeout={int(http_timeout() * 2)}s",
                            "inspect", "--raw", verify, f"--authfile={auth}",
                            f"docker://{parent.repository}@{parent.digest}"],
                           what=f"resolve {parent.reference}")
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ToolError(f"resolve {parent.reference}: the registry's manifest is not a "
                            "JSON object")
        if cache is not None:
            atomic.write_json(cache, data, indent=None)
        return data

    def platform_digest(self, parent: ExternalParent, platform: Platform) -> str | None:
        raw = self._raw(parent)
        if raw.get("mediaType") not in INDEX_TYPES and "manifests" not in raw:
            return parent.digest  # a single-platform manifest: trust the pin
        manifests = raw.get("manifests")
        for desc in manifests if isinstance(manifests, list) else []:
            if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
                continue
            plat = desc.get("platform") or {}
            if not isinstance(plat, dict):
                continue
            if plat.get("os") == platform.os and plat.get("architecture") == platform.arch:
                return str(desc["digest"])
        return None
