"""A hostile OCI registry on 127.0.0.1, and a second listener that records what reaches it.

The registry speaks enough of the distribution API for ``plan --against`` and ``publish``
(``/v2/`` challenge, blob HEAD/GET/upload, manifest GET/PUT), in memory, and misbehaves on
request: its token realm, upload ``Location`` and blob redirects point at the OTHER port
(``Elsewhere``); it can answer a manifest one byte at a time, drip its status line, or send a
200 MB manifest. ``Elsewhere`` records the raw bytes of every request it gets, so a test can
prove that no credential byte ever reached a second host:port.

Only this server is fake: it stands for "a registry nobody trusts", which no real registry
can be made to be.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

TOKEN = "hostile-registry-token-5f1e"
MIB = 1 << 20


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 as ``directory/ca.crt`` (the --cert-dir layout) + key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "ca.crt", directory.parent / "hostile.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes  # request line, headers and body as received


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread: nothing outlives it


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that stops talking frees its thread
    owner: Any = None

    def log_message(self, *args: object) -> None:
        return

    def _record(self) -> Seen:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        head = f"{self.requestline}\r\n{self.headers}".encode("latin-1", "replace")
        seen = Seen(self.command, self.path, dict(self.headers.items()), head + body)
        self.owner.seen.append(seen)
        self.body = body
        return seen

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
              ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        # one request per connection: a client's idle kept-alive connection would otherwise
        # hold a handler thread that server_close() waits for
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Elsewhere:
    """The second port: token realm, upload sink and blob storage of a :class:`Hostile`
    registry. It answers every request (anonymous ones included) and records them all."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.seen: list[Seen] = []
        self.blobs = blobs
        owner = self

        class Handler(_Base):
            def do_GET(self) -> None:
                self.owner = owner
                self._record()
                path = urlsplit(self.path).path
                if path == "/token":
                    self.reply(200, json.dumps({"token": TOKEN}).encode(),
                               {"Content-Type": "application/json"})
                elif path.startswith("/blob/") and path[6:] in owner.blobs:
                    self.reply(200, owner.blobs[path[6:]])
                else:
                    self.reply(404)

            def do_PUT(self) -> None:
                self.owner = owner
                self._record()
                digest = parse_qs(urlsplit(self.path).query).get("digest", [""])[0]
                if "sha256:" + hashlib.sha256(self.body).hexdigest() != digest:
                    self.reply(400)
                    return
                owner.blobs[digest] = self.body
                self.reply(201, headers={"Docker-Content-Digest": digest})

            do_HEAD = do_GET
            do_POST = do_GET

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def raw(self) -> bytes:
        return b"\n".join(s.raw for s in self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Hostile:
    """The registry. ``auth``: "basic" (htpasswd-like, ``username``/``password``), "bearer"
    (token from ``realm``), or "none". Misbehaviours are the flags below."""

    username: str = "ci"
    password: str = "hostile-s3cret-9d2c"
    auth: str = "basic"
    realm: str = ""  # default: Elsewhere's /token over plain HTTP
    upload_elsewhere: bool = False
    redirect_blobs: str = ""  # "elsewhere" | "loop"
    slow_manifest: float = 0.0  # seconds between the bytes of a manifest body
    slow_status: float = 0.0  # seconds between the bytes of the status line
    huge_manifest: int = 0  # bytes of a manifest answer
    huge_chunked: bool = False  # ...sent without a Content-Length
    tls_dir: Path | None = None  # serve https with a self-signed cert (ca.crt in here)
    seen: list[Seen] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.elsewhere = Elsewhere(self.blobs)
        self.realm = self.realm or f"{self.elsewhere.url}/token"
        owner = self
        expected = {"basic": "Basic " + base64.b64encode(
            f"{self.username}:{self.password}".encode()).decode(),
            "bearer": f"Bearer {TOKEN}"}.get(self.auth)

        class Handler(_Base):
            def _authorized(self) -> bool:
                if expected is None or self.headers.get("Authorization") == expected:
                    return True
                challenge = (f'Bearer realm="{owner.realm}",service="hostile"'
                             if owner.auth == "bearer" else 'Basic realm="hostile"')
                self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                           {"WWW-Authenticate": challenge})
                return False

            def _route(self) -> None:
                self.owner = owner
                self._record()
                if owner.slow_status:
                    owner.drip(self.wfile, b"HTTP/1.1 200 OK\r\n", owner.slow_status)
                    self.close_connection = True
                    return
                if not self._authorized():
                    return
                path = urlsplit(self.path).path
                if path == "/v2/":
                    self.reply(200, b"{}")
                elif "/manifests/" in path:
                    self._manifest(path.split("/manifests/", 1)[1])
                elif "/blobs/uploads/" in path:
                    self._upload()
                elif "/blobs/" in path:
                    self._blob(path.rsplit("/", 1)[1])
                else:
                    self.reply(404)

            def _manifest(self, reference: str) -> None:
                if self.command == "PUT":
                    digest = "sha256:" + hashlib.sha256(self.body).hexdigest()
                    entry = (self.body, self.headers.get("Content-Type", ""))
                    owner.manifests[reference] = owner.manifests[digest] = entry
                    self.reply(201, headers={"Docker-Content-Digest": digest})
                elif owner.huge_manifest:
                    owner.flood(self, owner.huge_manifest, owner.huge_chunked)
                elif owner.slow_manifest:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    owner.drip(self.wfile, b"{" * 1000, owner.slow_manifest)
                    self.close_connection = True
                elif reference in owner.manifests:
                    raw, media = owner.manifests[reference]
                    self.reply(200, raw, {"Content-Type": media, "Docker-Content-Digest":
                                          "sha256:" + hashlib.sha256(raw).hexdigest()})
                else:
                    self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

            def _upload(self) -> None:
                if self.command == "POST":
                    name = uuid.uuid4().hex
                    where = (f"{owner.elsewhere.url}/upload/{name}" if owner.upload_elsewhere
                             else f"/v2/upload/blobs/uploads/{name}")
                    self.reply(202, headers={"Location": where})
                    return
                digest = parse_qs(urlsplit(self.path).query).get("digest", [""])[0]
                owner.blobs[digest] = self.body
                self.reply(201, headers={"Docker-Content-Digest": digest})

            def _blob(self, digest: str) -> None:
                if owner.redirect_blobs == "loop":
                    self.reply(307, headers={"Location": self.path})
                elif digest not in owner.blobs:
                    self.reply(404)
                elif owner.redirect_blobs == "elsewhere" and self.command == "GET":
                    self.reply(307, headers={"Location": f"{owner.elsewhere.url}/blob/{digest}"})
                else:
                    self.reply(200, owner.blobs[digest])

            do_GET = do_HEAD = do_POST = do_PUT = _route

        self.server = _Server(("127.0.0.1", 0), Handler)
        if self.tls_dir is not None:
            cert, key = self_signed(self.tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def drip(self, out: Any, data: bytes, interval: float) -> None:
        """Send ``data`` one byte per ``interval`` until done, the client leaves or the
        server stops."""
        for byte in data:
            try:
                out.write(bytes([byte]))
                out.flush()
            except OSError:
                return
            if self.stop.wait(interval):
                return

    def flood(self, handler: _Base, size: int, chunked: bool) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(size))
        handler.end_headers()
        block = b"[" * MIB
        try:
            for _ in range(size // MIB):
                if self.stop.is_set():
                    break
                if chunked:
                    handler.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                else:
                    handler.wfile.write(block)
        except OSError:
            pass
        handler.close_connection = True

    def raw(self) -> bytes:
        return b"\n".join(s.raw for s in self.seen)

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.elsewhere.close()

