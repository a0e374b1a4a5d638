"""Secrets in the environment of a build reach no layer, log line or error message."""

from __future__ import annotations

import gzip
import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool


def test_no_secret_in_layers_logs_or_errors(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("buildah")
    password = f"regpass-{secrets.token_hex(12)}"
    token = f"pypitoken-{secrets.token_hex(12)}"
    ca_marker = f"SITECA-{secrets.token_hex(12)}"
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("CI_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("PIP_INDEX_TOKEN", token)
    bundle = tmp_path / "ca.pem"
    bundle.write_text(f"-----BEGIN CERTIFICATE-----\n{ca_marker}\n-----END CERTIFICATE-----\n")
    root = tree("ca")
    # a step that fails while echoing the secrets it can see: nothing may leak anyway
    broken = root / "layers/leaky"
    broken.mkdir()
    (broken / "layer.yaml").write_text("kind: script\nscript: leak.sh\n")
    # ... and then proves it ran, and what it saw, by hashes the test computes itself: the
    # CA bundle's (it must be visible to the step), and those of the two secrets as the step
    # saw them (empty: they must not reach it)
    (broken / "leak.sh").write_text(
        '#!/bin/sh\necho "token=${PIP_INDEX_TOKEN:-} pass=${LAMINA_REGISTRY_PASSWORD:-}"\n'
        'cat "$SSL_CERT_FILE"\n'
        'sha() { busybox sha256sum | busybox cut -d" " -f1; }\n'
        'echo "leaky ran: ca $(sha < "$SSL_CERT_FILE")'
        ' token $(printf %s "${PIP_INDEX_TOKEN:-}" | sha)'
        ' password $(printf %s "${LAMINA_REGISTRY_PASSWORD:-}" | sha)"\n'
        'exit 1\n')
    (root / "images/leaky").mkdir()
    (root / "images/leaky/image.yaml").write_text("parent: base\nlayers: [leaky]\n")
    monkeypatch.setenv("LAMINA_CA_BUNDLE", str(bundle))
    result = lamina("-C", str(root), "build")
    assert result.code == 1  # leaky fails, the rest builds
    needles = [password.encode(), token.encode(), ca_marker.encode()]
    haystacks: list[tuple[str, bytes]] = [("stdout", result.out.encode()),
                                          ("stderr", result.err.encode())]
    for blob in (root / ".lamina/store/blobs/sha256").iterdir():
        data = blob.read_bytes()
        haystacks.append((blob.name, gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data))
    for path in (root / ".lamina").rglob("*"):
        if path.is_file() and "blobs" not in path.parts and "cache" not in path.parts:
            haystacks.append((str(path), path.read_bytes()))
    leaks = [(where, n) for where, data in haystacks for n in needles if n in data]
    assert leaks == []

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    log = (root / ".lamina/logs/leaky-amd64.log").read_text()
    ran = [line for line in log.splitlines() if line.startswith("leaky ran: ")]
    assert ran == [f"leaky ran: ca {sha(bundle.read_bytes())} token {sha(b'')} "
                   f"password {sha(b'')}"]
    seen = [sha(password.encode()), sha(token.encode())]
    assert [h for h in seen if any(h.encode() in data for _, data in haystacks)] == []
