"""A registry nobody trusts: no credential reaches a second port, time and memory stay bounded.

The hostile registry (``hostile_registry.py``) points its token realm, its upload Location
and its blob redirects at a second port that records every byte it receives; it drips
answers and sends a 200 MB manifest. The credentials are LAMINA_REGISTRY_USERNAME/PASSWORD,
bound to the registry's host:port only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamina.credentials import Binding, Credentials, CredentialStore
from lamina.errors import RegistryError
from lamina.registry_client import RegistryClient
from tests.core.conftest import CliResult, require_tool
from tests.peak_memory import run_measured
from tests.publish.hostile_registry import TOKEN, Hostile

Lamina = Callable[..., CliResult]


def secret_bytes(registry: Hostile) -> list[bytes]:
    """The password as it could travel: plain, and inside a Basic header."""
    pair = f"{registry.username}:{registry.password}".encode()
    return [registry.password.encode(), base64.b64encode(pair)]


def no_secret_in(data: bytes, registry: Hostile) -> bool:
    return not any(secret in data for secret in secret_bytes(registry))


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[Hostile], None]:
    """LAMINA_REGISTRY_USERNAME/PASSWORD of ``registry``, and no auth file of this machine."""
    def apply(registry: Hostile) -> None:
        monkeypatch.setenv("LAMINA_REGISTRY_USERNAME", registry.username)
        monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", registry.password)
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
        for name in ("CI_REGISTRY", "CI_SERVER_URL", "CI_JOB_TOKEN", "LAMINA_REGISTRY_HOST"):
            monkeypatch.delenv(name, raising=False)
    return apply


@pytest.fixture
def hostile() -> Iterator[Callable[..., Hostile]]:
    started: list[Hostile] = []

    def start(**kwargs: object) -> Hostile:
        registry = Hostile(**kwargs)  # type: ignore[arg-type]
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.close()


def test_token_realm_on_another_port_is_asked_anonymously(
        lamina: Lamina, tree: Callable[[str], Path], hostile: Callable[..., Hostile],
        creds_env: Callable[[Hostile], None], tmp_path: Path) -> None:
    registry = hostile(auth="bearer")
    creds_env(registry)
    root = tree("tiny")
    result = lamina("-C", str(root), "plan", "--against", f"{registry.host}/hep",
                    "--insecure-loopback", "--json")
    assert result.code == 0, result.err
    assert {e["status"] for e in result.json()} == {"build"}  # asked, found nothing
    realm = [s for s in registry.elsewhere.seen if s.path.startswith("/token")]
    assert realm, "the realm was never asked"
    assert all("Authorization" not in s.headers for s in realm)
    assert no_secret_in(registry.elsewhere.raw(), registry)
    # the registry itself got the (anonymous) token, never the password
    assert any(s.headers.get("Authorization") == f"Bearer {TOKEN}" for s in registry.seen)
    assert no_secret_in(registry.raw(), registry)

    # an auth file entry names the realm's host: then (and only then) it gets credentials,
    # the ones of that entry
    authfile = tmp_path / "auth.json"
    realm_pair = base64.b64encode(b"realm-user:realm-pass").decode()
    authfile.write_text(json.dumps({"auths": {
        f"127.0.0.1:{registry.elsewhere.port}": {"auth": realm_pair}}}))
    registry.elsewhere.seen.clear()
    bound = lamina("-C", str(root), "plan", "--against", f"{registry.host}/hep",
                   "--insecure-loopback", "--authfile", str(authfile), "--json")
    assert bound.code == 0, bound.err
    sent = {s.headers.get("Authorization") for s in registry.elsewhere.seen
            if s.path.startswith("/token")}
    assert sent == {f"Basic {realm_pair}"}
    assert no_secret_in(registry.elsewhere.raw(), registry)


def test_plain_http_realm_of_a_tls_registry_is_refused(
        lamina: Lamina, tree: Callable[[str], Path], hostile: Callable[..., Hostile],
        creds_env: Callable[[Hostile], None], tmp_path: Path) -> None:
    registry = hostile(auth="bearer", tls_dir=tmp_path / "certs")
    creds_env(registry)
    result = lamina("-C", str(tree("tiny")), "plan", "--against", f"{registry.host}/hep",
                    "--cert-dir", str(tmp_path / "certs"))
    assert result.code == 1
    assert result.err == (f"lamina: error: {registry.host}: token realm "
                          f"http://127.0.0.1:{registry.elsewhere.port} is not https (only a "
                          "loopback plain-HTTP registry may use a plain-HTTP realm); "
                          "refused\n")
    assert registry.elsewhere.seen == []


def test_upload_location_on_another_port_gets_no_credentials(
        lamina: Lamina, tree: Callable[[str], Path], hostile: Callable[..., Hostile],
        creds_env: Callable[[Hostile], None]) -> None:
    require_tool("buildah")
    registry = hostile(auth="basic", upload_elsewhere=True)
    root = tree("tiny")
    assert lamina("-C", str(root), "build", "base").code == 0
    creds_env(registry)
    result = lamina("-C", str(root), "publish", "base", "--to", f"{registry.host}/hep",
                    "--tag", "v1", "--insecure-loopback", "--json")
    assert result.code == 0, result.err + result.out
    uploads = [s for s in registry.elsewhere.seen if s.method == "PUT"]
    assert uploads, "no upload went to the Location"
    assert all("Authorization" not in s.headers for s in uploads)
    assert no_secret_in(registry.elsewhere.raw(), registry)
    # the registry got Basic (it asked for it) and holds what was published
    assert any(s.headers.get("Authorization", "").startswith("Basic ") for s in registry.seen)
    assert "v1" in registry.manifests and "v1-amd64" in registry.manifests


def test_blob_redirect_to_another_port_gets_no_credentials(
        hostile: Callable[..., Hostile]) -> None:
    registry = hostile(auth="basic", redirect_blobs="elsewhere")
    data = b'{"bomFormat": "CycloneDX"}'
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    registry.blobs[digest] = data
    store = CredentialStore([Binding(registry.host, "", Credentials(
        registry.username, registry.password, "test"))])
    client = RegistryClient(registry.host, store, verify=False, scheme="http")
    assert client.blob("hep/base", digest) == data
    fetched = [s for s in registry.elsewhere.seen if s.path == f"/blob/{digest}"]
    assert len(fetched) == 1 and "Authorization" not in fetched[0].headers
    assert no_secret_in(registry.elsewhere.raw(), registry)

    looping = hostile(auth="none", redirect_blobs="loop")
    client = RegistryClient(looping.host, store, verify=False, scheme="http")
    with pytest.raises(RegistryError) as caught:
        client.blob("hep/base", digest)
    assert caught.value.message == (f"{looping.host}: more than 5 redirects for "
                                    f"/v2/hep/base/blobs/{digest}")
    assert len(looping.seen) == 6


@pytest.mark.parametrize("drip", ["slow_manifest", "slow_status"])
def test_a_dripping_registry_is_cut_at_the_deadline(
        lamina: Lamina, tree: Callable[[str], Path], hostile: Callable[..., Hostile],
        creds_env: Callable[[Hostile], None], monkeypatch: pytest.MonkeyPatch,
        drip: str) -> None:
    registry = hostile(auth="none", **{drip: 1.0})
    creds_env(registry)
    monkeypatch.setenv("LAMINA_HTTP_TIMEOUT", "3")
    root = tree("tiny")
    started = time.monotonic()
    assert lamina("-C", str(root), "plan").code == 0
    planning = time.monotonic() - started  # the same work, without the registry
    started = time.monotonic()
    result = lamina("-C", str(root), "plan", "--against", f"{registry.host}/hep",
                    "--insecure-loopback")
    elapsed = time.monotonic() - started
    assert result.code == 1
    assert result.err == (f"lamina: error: {registry.host}: no complete answer within 3 s "
                          "(LAMINA_HTTP_TIMEOUT)\n")
    assert elapsed < planning + 3 + 5, (elapsed, planning)  # the deadline plus slack


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_200_mb_manifest_is_refused_in_bounded_time_and_memory(
        tree: Callable[[str], Path], hostile: Callable[..., Hostile], tmp_path: Path,
        chunked: bool) -> None:
    registry = hostile(auth="none", huge_manifest=200 << 20, huge_chunked=chunked)
    root = tree("tiny")
    lamina_bin = Path(sys.executable).parent / "lamina"
    started = time.monotonic()
    measured = run_measured([str(lamina_bin), "-C", str(root), "plan", "--against",
                             f"{registry.host}/hep", "--insecure-loopback"], timeout=120)
    elapsed = time.monotonic() - started
    code, peak_kib, err = measured.code, measured.peak_kib, measured.err.strip()
    assert code == 1
    assert err.startswith(f"lamina: error: {registry.host}: GET /v2/hep/")
    assert err.endswith("-byte limit") and "4194304" in err
    assert peak_kib < 120 * 1024, f"peak RSS {peak_kib} KiB"
    assert elapsed < 60
