"""A publish target: a registry and a namespace, and how to talk to it.

TLS is verified by default; ``cert_dir`` holds a custom CA (``ca.crt``, the layout skopeo
and podman use); plain HTTP or unverified TLS is allowed for a loopback registry only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from lamina.errors import UsageError
from lamina.procs import capture
from lamina.registry_auth import credentials_for
from lamina.registry_client import RegistryClient

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class Target:
    registry: str
    namespace: str
    tls_verify: bool = True
    cert_dir: Path | None = None
    authfile: Path | None = None

    def repository(self, image: str) -> str:
        return f"{self.registry}/{self.namespace}/{image}"

    @classmethod
    def parse(cls, text: str, cert_dir: Path | None = None, authfile: Path | None = None,
              insecure: bool = False) -> Target:
        registry, _, namespace = text.partition("/")
        if not registry or not namespace:
            raise UsageError(f"target '{text}': expected REGISTRY/NAMESPACE")
        host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry
        if insecure and host not in LOOPBACK:
            raise UsageError(f"target '{text}': TLS verification can only be turned off for a "
                             "loopback registry")
        return cls(registry, namespace.strip("/"), not insecure, cert_dir, authfile)

    def path(self, repository: str) -> str:
        """``registry/ns/image`` → ``ns/image``, the name in the registry's API paths."""
        return repository.removeprefix(f"{self.registry}/")


def client_for(target: Target) -> RegistryClient:
    """A client that trusts what skopeo would: the CA in ``--cert-dir``, or plain HTTP /
    unverified TLS for a loopback registry explicitly marked insecure."""
    verify: bool | str = True
    if target.cert_dir is not None and (target.cert_dir / "ca.crt").exists():
        verify = str(target.cert_dir / "ca.crt")
    scheme = "https"
    if not target.tls_verify:
        # the user asked for this on loopback; urllib3's warning per request would bury output
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        verify = False
        try:
            requests.get(f"https://{target.registry}/v2/", verify=False, timeout=5)
        except requests.RequestException:
            scheme = "http"
    return RegistryClient(target.registry, credentials_for(target.registry, target.authfile),
                          verify, scheme)


def pull(source: str, dest: str, tls_verify: bool, cert_dir: Path | None,
         authfile: Path | None, *, what: str, all_images: bool = False) -> None:
    """Copy an image from a registry into a local layout with skopeo, digests unchanged
    (pulls stay with the field's tool; pushes go through :mod:`lamina.registry_client`)."""
    cmd = ["skopeo", "copy", "--quiet", "--preserve-digests", "--retry-times", "3",
           f"--src-tls-verify={'true' if tls_verify else 'false'}"]
    if all_images:
        cmd.append("--all")
    if cert_dir is not None:
        cmd.append(f"--src-cert-dir={cert_dir}")
    if authfile is not None:
        cmd.append(f"--src-authfile={authfile}")
    capture([*cmd, source, dest], what=what)
