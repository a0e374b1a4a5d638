"""A publish target: a registry and a namespace, and how to talk to it.

TLS is verified by default; ``cert_dir`` holds a custom CA (``ca.crt``, the layout skopeo
and podman use); plain HTTP or unverified TLS is allowed for a loopback registry only.
A target never carries credentials (``user:pass@host/ns`` is refused without echoing
them): they come from the :mod:`lamina.credentials` store, bound to the target's host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
import urllib3

from lamina.credentials import CredentialStore, host_key
from lamina.errors import UsageError
from lamina.http import BoundedSession, http_timeout
from lamina.procs import capture
from lamina.registry_client import RegistryClient

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# distribution's path components: lower-case alphanumerics joined by '.', '_', '__' or '-'s
_DIGEST_PREFIX = re.compile(r"^sha(256|512):[0-9a-f]+$")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
CREDENTIAL_HINT = ("use LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables or --authfile")


def refuse_userinfo(text: str, what: str = "target", *, digest_ok: bool = False) -> None:
    """Refuse a registry reference that carries ``user[:password]@``, naming it with
    everything before the last such ``@`` replaced, so the message never holds the secret.
    With ``digest_ok`` a trailing ``@sha256:…`` is the reference's digest, not userinfo."""
    body, digest = text, ""
    if digest_ok and "@" in text:
        head, _, tail = text.rpartition("@")
        if _DIGEST_PREFIX.match(tail):
            body, digest = head, "@" + tail
    if "@" in body:
        shown = "<redacted>@" + body.rsplit("@", 1)[1] + digest
        article = "an" if what[0] in "aeiou" else "a"
        raise UsageError(f"{what} '{shown}': credentials in {article} {what} are not "
                         f"accepted; {CREDENTIAL_HINT}")


def unpack_registries() -> list[str]:
    """The registries of a command that names none (``lamina unpack``), which
    ``LAMINA_REGISTRY_USERNAME``/``PASSWORD`` may be sent to: the project's recipe
    ``targets`` and ``LAMINA_TARGET``."""
    from lamina.settings import project_dir
    from lamina.yamlio import load_yaml

    out = []
    recipe = project_dir(None) / "recipe.yaml"
    if recipe.is_file():
        data = load_yaml(recipe).data
        for entry in (data.get("targets") if isinstance(data, dict) else None) or []:
            if isinstance(entry, dict) and isinstance(entry.get("registry"), str):
                out.append(entry["registry"])
    if os.environ.get("LAMINA_TARGET"):
        out.append(os.environ["LAMINA_TARGET"].split("/", 1)[0])
    return [r for r in out if "@" not in r]


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else \
        registry.split("]")[0] + "]"
    return host in LOOPBACK


@dataclass(frozen=True)
class Target:
    registry: str
    namespace: str
    tls_verify: bool = True
    cert_dir: Path | None = None
    authfile: Path | None = None  # the private auth file handed to skopeo (skopeo_auth)
    credentials: CredentialStore = field(default_factory=CredentialStore, compare=False,
                                         repr=False)

    def repository(self, image: str) -> str:
        return f"{self.registry}/{self.namespace}/{image}"

    @classmethod
    def parse(cls, text: str, cert_dir: Path | None = None, insecure: bool = False,
              credentials: CredentialStore | None = None) -> Target:
        refuse_userinfo(text)
        if "://" in text:
            raise UsageError(f"target '{text}': expected REGISTRY/NAMESPACE, without a "
                             "scheme")
        registry, _, namespace = text.partition("/")
        namespace = namespace.strip("/")
        if not registry or not namespace:
            raise UsageError(f"target '{text}': expected REGISTRY/NAMESPACE")
        try:
            host_key(registry)
        except ValueError:
            raise UsageError(f"target '{text}': '{registry}' is not a registry "
                             "host[:port]") from None
        if not all(_COMPONENT.fullmatch(part) for part in namespace.split("/")):
            raise UsageError(f"target '{text}': '{namespace}' is not a repository namespace "
                             "(lower-case components separated by '/')")
        if insecure and not is_loopback(registry):
            raise UsageError(f"target '{text}': TLS verification can only be turned off for a "
                             "loopback registry")
        return cls(registry, namespace, not insecure, cert_dir, None,
                   credentials if credentials is not None else CredentialStore())

    def path(self, repository: str) -> str:
        """``registry/ns/image`` → ``ns/image``, the name in the registry's API paths."""
        return repository.removeprefix(f"{self.registry}/")


@contextlib.contextmanager
def skopeo_auth(target: Target) -> Iterator[Target]:
    """``target`` with a private auth file for skopeo holding only its credentials for the
    target's namespace (every repository skopeo pulls for it lies under it)."""
    with target.credentials.skopeo_authfile(target.registry, target.namespace) as path:
        yield dataclasses.replace(target, authfile=path)


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
            BoundedSession(timeout=min(5.0, http_timeout())).get(
                f"https://{target.registry}/v2/", verify=False)
        except requests.RequestException:
            scheme = "http"
    return RegistryClient(target.registry, target.credentials, verify, scheme)


def pull(source: str, dest: str, tls_verify: bool, cert_dir: Path | None,
         authfile: Path | None, *, what: str, all_images: bool = False) -> None:
    """Copy an image from a registry into a local layout with skopeo, digests unchanged
    (pulls stay with the field's tool; pushes go through :mod:`lamina.registry_client`).
    ``authfile`` is a private one from :mod:`lamina.credentials` (no file: anonymous, never
    the user's own files, which hold other hosts' credentials)."""
    cmd = ["skopeo", f"--command-timeout={skopeo_timeout()}s", "copy", "--quiet",
           "--preserve-digests", "--retry-times", "3",
           f"--src-tls-verify={'true' if tls_verify else 'false'}"]
    if all_images:
        cmd.append("--all")
    if cert_dir is not None:
        cmd.append(f"--src-cert-dir={cert_dir}")
    with contextlib.ExitStack() as stack:
        if authfile is None:  # an empty private file: anonymous, not skopeo's defaults
            authfile = stack.enter_context(CredentialStore().skopeo_authfile(source))
        cmd.append(f"--src-authfile={authfile}")
        capture([*cmd, source, dest], what=what)


def skopeo_timeout() -> int:
    """skopeo's whole-command deadline: a pull moves whole images, so far more than one
    request's LAMINA_HTTP_TIMEOUT (60 of them, at least an hour)."""
    return int(max(3600.0, 60 * http_timeout()))
