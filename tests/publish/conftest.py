"""A real docker-registry (Debian's distribution 2.8) on 127.0.0.1 with TLS and htpasswd."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.core.conftest import lamina, require_tool, tree

__all__ = ["TlsRegistry", "lamina", "tls_registry", "tree"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TlsRegistry:
    host: str
    username: str
    password: str
    cert_dir: Path
    authfile: Path
    storage: Path
    access_log: Path
    process: subprocess.Popen[bytes]

    def blob_uploads(self) -> int:
        """Blob uploads the registry accepted (PUT .../blobs/uploads/...), from its log."""
        text = self.access_log.read_text(errors="replace")
        return sum(1 for line in text.splitlines()
                   if '"PUT /v2/' in line and "/blobs/uploads/" in line and '" 201 ' in line)

    def kill(self) -> None:
        """SIGKILL the registry process, as a crash or an OOM kill would."""
        self.process.kill()
        self.process.wait(timeout=10)

    def start(self) -> None:
        """(Re)start the registry on the same address with the same storage."""
        config = self.storage.parent / "config.yml"
        with self.access_log.open("ab") as handle:
            self.process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                            stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"https://{self.host}/v2/", verify=str(self.cert_dir / "ca.crt"),
                             timeout=2)
                return
            except requests.RequestException:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.process.kill()
                    pytest.fail("docker-registry did not restart")
                time.sleep(0.2)

    def get(self, path: str, accept: str = "") -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        return requests.get(f"https://{self.host}{path}", auth=(self.username, self.password),
                            verify=str(self.cert_dir / "ca.crt"), headers=headers, timeout=10)


@pytest.fixture
def tls_registry(tmp_path: Path) -> Iterator[TlsRegistry]:
    require_tool("docker-registry")
    require_tool("htpasswd")
    require_tool("openssl")
    root = tmp_path / "registry"
    (root / "certs").mkdir(parents=True)
    key, cert = root / "tls.key", root / "certs" / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    username, password = "ci", "s3cret-" + tmp_path.name[-6:]
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], check=True,
                              capture_output=True, text=True).stdout
    (root / "htpasswd").write_text(htpasswd)
    port = free_port()
    access_log = root / "registry.log"
    (root / "config.yml").write_text(json.dumps({
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")},
                    "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "lamina-test",
                 "tls": {"certificate": str(cert), "key": str(key)}},
        "auth": {"htpasswd": {"realm": "lamina-test", "path": str(root / "htpasswd")}},
    }))
    with access_log.open("wb") as handle:
        process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                                   stdout=handle, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"https://{host}/v2/", verify=str(cert), timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"docker-registry did not start: {access_log.read_text()[-500:]}")
            time.sleep(0.2)
    authfile = root / "auth.json"
    import base64

    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    authfile.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    authfile.chmod(0o600)
    registry = TlsRegistry(host, username, password, root / "certs", authfile, root / "data",
                           access_log, process)
    yield registry
    # registry.process, not the first process: a test may have killed and restarted it
    registry.process.terminate()
    try:
        registry.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait(timeout=10)
    shutil.rmtree(root / "data", ignore_errors=True)
