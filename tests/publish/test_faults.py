"""What publishing does when the registry misbehaves."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.core.conftest import CliResult
from tests.publish.conftest import TlsRegistry
from tests.publish.faulty_proxy import DROP, FaultyProxy

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ERROR = b'{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}'


@pytest.fixture
def index_refusing_proxy(tls_registry: TlsRegistry) -> Iterator[FaultyProxy]:
    def refuse_index(method: str, path: str, headers: dict[str, str],
                     body: bytes) -> tuple[int, bytes] | None:
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        # the release index only (referrers indexes are pushed as the same media type)
        if method == "PUT" and path.endswith("/manifests/v9") and content_type == INDEX:
            return 500, ERROR
        return None

    proxy = FaultyProxy(tls_registry.host, str(tls_registry.cert_dir / "ca.crt"), refuse_index)
    yield proxy
    proxy.close()


def test_registry_500_on_the_index_fails_clearly_and_tags_nothing(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry, index_refusing_proxy: FaultyProxy) -> None:
    root = tree("tiny")
    recipe = root / "recipe.yaml"  # two platforms: <tag> is an index (one: the manifest)
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    assert lamina("-C", str(root), "build", "base").code == 0
    auth = root / "auth.json"
    auth.write_text(tls_registry.authfile.read_text().replace(tls_registry.host,
                                                              index_refusing_proxy.host))
    result = lamina("-C", str(root), "publish", "base", "--to",
                    f"{index_refusing_proxy.host}/hep", "--tag", "v9", "--insecure-loopback",
                    "--authfile", str(auth))
    assert result.code == 1
    # one line: the registry, what was being pushed, and the registry's own answer
    assert result.err == (f"lamina: error: {index_refusing_proxy.host}: push hep/base:v9: "
                          "registry answered 500: UNKNOWN injected failure\n")
    assert index_refusing_proxy.faults >= 1
    # the per-arch images went out, the index tag never appeared
    for arch in ("amd64", "arm64"):
        assert tls_registry.get(f"/v2/hep/base/manifests/v9-{arch}",
                                MANIFEST).status_code == 200
    assert tls_registry.get("/v2/hep/base/manifests/v9", f"{INDEX}, {MANIFEST}"
                            ).status_code == 404


def test_flaky_registry_30_percent_502_or_dropped_publish_succeeds_with_counted_retries(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry) -> None:
    """A load balancer in front of the registry answers 502 or drops the connection on 30 %
    of requests (seeded, so the run is repeatable): every request is retried on its own,
    the publish completes, and it says how many retries it needed."""
    rng = random.Random(20261123)
    lock = threading.Lock()

    def flaky(method: str, path: str, headers: dict[str, str],
              body: bytes) -> tuple[int, bytes] | None:
        with lock:
            roll = rng.random()
        if roll < 0.15:
            return 502, b'{"errors":[{"code":"UNAVAILABLE","message":"bad gateway"}]}'
        if roll < 0.30:
            return DROP, b""
        return None

    proxy = FaultyProxy(tls_registry.host, str(tls_registry.cert_dir / "ca.crt"), flaky)
    try:
        root = tree("tiny")
        assert lamina("-C", str(root), "build").code == 0
        auth = root / "auth.json"
        auth.write_text(tls_registry.authfile.read_text().replace(tls_registry.host,
                                                                  proxy.host))
        result = lamina("-C", str(root), "publish", "--to", f"{proxy.host}/hep", "--tag",
                        "v5", "--insecure-loopback", "--authfile", str(auth), "--json")
        assert result.code == 0, result.out + result.err
        published = result.json()
        retries = sum(p["retries"] for p in published)
        assert proxy.faults > 5 and retries >= proxy.faults - 2  # token/ping answers count
        assert retries <= 8 * 40  # bounded
        for image in ("base", "app", "leaf"):
            # single-platform: <tag> is the per-arch manifest, with every blob it names
            tagged = tls_registry.get(f"/v2/hep/{image}/manifests/v5", f"{INDEX}, {MANIFEST}")
            assert tagged.status_code == 200 and tagged.headers["Content-Type"] == MANIFEST
            assert tagged.headers["Docker-Content-Digest"] == tls_registry.get(
                f"/v2/hep/{image}/manifests/v5-amd64", MANIFEST).headers["Docker-Content-Digest"]
            body = tagged.json()
            for desc in [body["config"], *body["layers"]]:
                assert tls_registry.get(f"/v2/hep/{image}/blobs/{desc['digest']}"
                                        ).status_code == 200
        table = lamina("-C", str(root), "publish", "--to", f"{proxy.host}/hep", "--tag",
                       "v5", "--insecure-loopback", "--authfile", str(auth))
        assert table.code == 0
        assert "request(s) retried after transient registry errors" in table.out
    finally:
        proxy.close()
