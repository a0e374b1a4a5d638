"""Unpacking a registry reference: skopeo copies it (TLS, auth from the environment) into the
cache layout under the store, and the public path is named after the registry host:port."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry, tls_registry
from tests.unpack.oci import f, gz, single, tar_bytes

__all__ = ["tls_registry"]

Lamina = Callable[..., CliResult]


def test_registry_reference_is_copied_then_unpacked(
        lamina: Lamina, tls_registry: TlsRegistry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("skopeo")
    layout = tmp_path / "layout"
    config = single(layout, [gz(tar_bytes([f("etc/motd", "from the registry\n")]))],
                    env=["HELLO=registry"])
    target = f"docker://{tls_registry.host}/hep/tools/probe:v1"
    subprocess.run(["skopeo", "copy", "--dest-cert-dir", str(tls_registry.cert_dir),
                    "--dest-authfile", str(tls_registry.authfile), f"oci:{layout}:test",
                    target], check=True, capture_output=True)

    store = tmp_path / "store"
    out = tmp_path / "cvmfs"
    monkeypatch.chdir(tmp_path)  # no recipe here: --store is enough
    monkeypatch.setenv("LAMINA_REGISTRY_USERNAME", tls_registry.username)
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", tls_registry.password)
    # no recipe names a target here: say which registry the credentials are for
    monkeypatch.setenv("LAMINA_REGISTRY_HOST", tls_registry.host)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-such-auth.json"))
    result = lamina("unpack", target, str(out), "--store", str(store), "--src-cert-dir",
                    str(tls_registry.cert_dir), "--json")
    assert result.code == 0, result.err
    assert tls_registry.password not in result.out + result.err
    public = out / tls_registry.host / "hep/tools/probe:v1"
    hexpart = config.split(":")[1]
    assert os.readlink(public) == f"../../../.flat/{hexpart[:2]}/{hexpart}"
    assert (public / "etc/motd").read_text() == "from the registry\n"
    assert 'export HELLO="${HELLO:-"registry"}"' in (
        public / ".singularity.d/env/10-docker2singularity.sh").read_text()
    assert (store / "lamina/unpack-cache/index.json").is_file()

    # without credentials the registry refuses, and the error is one line
    monkeypatch.delenv("LAMINA_REGISTRY_PASSWORD")
    denied = lamina("unpack", target, str(tmp_path / "other"), "--store", str(store),
                    "--src-cert-dir", str(tls_registry.cert_dir))
    assert denied.code == 1
    assert denied.err.startswith("lamina: error: copying docker://")
    assert len(denied.err.strip().splitlines()) == 1


def test_reference_without_tag_or_digest_is_refused(lamina: Lamina, tmp_path: Path) -> None:
    result = lamina("unpack", "docker://registry.example.org/hep/tools", str(tmp_path / "o"),
                    "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert "needs a :tag or an @sha256: digest" in result.err
