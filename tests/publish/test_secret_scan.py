"""The registry password appears in no output, record, log, pipeline, annotation or blob.

Every command that touches a registry runs with LAMINA_REGISTRY_USERNAME/PASSWORD set (and a
git remote that carries a token, as a CI checkout's does), against the real TLS + htpasswd
registry; then every byte lamina printed or wrote, and every byte the registry stores
(layers decompressed), is searched for the password and for base64 of ``user:password``.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry

Lamina = Callable[..., CliResult]


def needles(user: str, password: str) -> list[bytes]:
    return [password.encode(), base64.b64encode(f"{user}:{password}".encode()),
            base64.b64encode(password.encode())]


def files_under(*roots: Path) -> Iterable[Path]:
    for root in roots:
        for directory, _, names in os.walk(root):  # symlinks are not followed
            for name in names:
                path = Path(directory, name)
                if path.is_file() and not path.is_symlink():
                    yield path


def holding(paths: Iterable[Path], secrets: list[bytes]) -> list[str]:
    """Files whose bytes (or, for gzip, whose decompressed bytes) hold a secret."""
    found = []
    for path in paths:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                data += gzip.decompress(data)
        if any(secret in data for secret in secrets):
            found.append(str(path))
    return found


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=ci@example.org", "-c",
                    "user.name=ci", *args], check=True, capture_output=True, timeout=30)


def test_no_byte_of_the_password_is_printed_written_or_pushed(
        lamina: Lamina, tree: Callable[[str], Path], tls_registry: TlsRegistry,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    require_tool("git")
    user, password = tls_registry.username, tls_registry.password
    secrets = needles(user, password)
    root = tree("tiny")
    leaf = root / "images/leaf/image.yaml"
    leaf.write_text(leaf.read_text() + "jupyterhub:\n  display_name: Tiny leaf\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny")
    git(root, "remote", "add", "origin",
        f"https://{user}:{password}@gitlab.example.org/hep/tiny.git")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    for name in ("REGISTRY_AUTH_FILE", "CI_PROJECT_URL", "CI_COMMIT_SHA", "CI_REGISTRY",
                 "CI_COMMIT_TAG", "LAMINA_REGISTRY_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMINA_REGISTRY_USERNAME", user)
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", password)
    target = f"{tls_registry.host}/hep"
    monkeypatch.setenv("LAMINA_TARGET", target)  # what unpack's credentials are bound to
    registry = ["--to", target, "--cert-dir", str(tls_registry.cert_dir)]
    printed: list[str] = []

    def run(*args: str, ok: bool = True) -> CliResult:
        result = lamina("-C", str(root), *args)
        printed.extend([result.out, result.err])
        if ok:
            assert result.code == 0, f"{args}: {result.err}{result.out}"
        return result

    run("build")
    scratch = tmp_path / "tmp"  # where lamina's private auth files are made
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    run("publish", "--tag", "v1", *registry, "--json")
    run("publish", "--tag", "v1", *registry)  # the table, and a rerun
    run("build", "--push", "--tag", "v2", *registry, "--json")
    run("build", "--push", *registry)  # key tags only, human output
    run("plan", "--against", target, "--cert-dir", str(tls_registry.cert_dir), "--json")
    run("cvmfs", "entries", "--json")
    run("cvmfs", "entries")
    pipeline = run("ci", "gitlab", "--all", "--target", target).out
    run("jupyterhub")
    unpacked = tmp_path / "cvmfs"
    run("unpack", f"docker://{target}/leaf:v1", str(unpacked), "--src-cert-dir",
        str(tls_registry.cert_dir), "--json")
    # a refused password is reported without itself
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", password + "-wrong")
    secrets += needles(user, password + "-wrong")
    denied = run("publish", "--tag", "v3", *registry, ok=False)
    assert denied.code == 1
    assert re.fullmatch(
        rf"lamina: error: {re.escape(tls_registry.host)}: hep/base:lamina-[0-9a-f]{{40}}: "
        r"unauthorized \(set LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables, or "
        r"--authfile\)\n", denied.err), denied.err
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", password)

    assert [s for s in secrets if any(s in text.encode() for text in printed)] == []
    assert holding([tls_registry.authfile], secrets)  # the scan does find a secret
    assert holding(files_under(root / ".lamina", unpacked, tls_registry.storage, scratch),
                   secrets) == []
    assert [p.name for p in scratch.iterdir() if p.name.startswith("lamina-auth-")] == []
    assert password not in pipeline and "$LAMINA_REGISTRY_PASSWORD" not in pipeline

    # the source annotation keeps the remote, without its userinfo (a single-platform
    # image: <tag> is its per-arch manifest)
    tagged = tls_registry.get("/v2/hep/leaf/manifests/v1",
                              "application/vnd.oci.image.manifest.v1+json")
    assert tagged.headers["Content-Type"] == "application/vnd.oci.image.manifest.v1+json"
    assert json.loads(tagged.text)["annotations"]["org.opencontainers.image.source"] == (
        "https://gitlab.example.org/hep/tiny.git")
