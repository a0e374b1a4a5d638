"""A GitLab-shaped ``/jwt/auth`` token server for docker-registry's token auth, on loopback.

It checks Basic credentials (``gitlab-ci-token`` + the job token, as GitLab CI sends them),
grants the requested ``repository:<name>:<actions>`` scopes and signs an RS256 JWT whose
``kid`` is the libtrust key id distribution 2.8 uses to find the verification key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "container_registry"
ISSUER = "lamina-test-gitlab"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(public_der: bytes) -> str:
    digest = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode()
    return ":".join(digest[i:i + 4] for i in range(0, 48, 4))


class TokenServer:
    def __init__(self, workdir: Path, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.requests: list[str] = []
        self.authorizations: list[str] = []  # the Authorization header of each request
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lamina token signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        self.cert_file = workdir / "token-signer.pem"
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = libtrust_kid(public_der)
        self.key = key
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                url = urlparse(self.path)
                server.requests.append(url.query)
                auth = self.headers.get("Authorization", "")
                server.authorizations.append(auth)
                expected = "Basic " + base64.b64encode(
                    f"{server.username}:{server.password}".encode()).decode()
                if url.path != "/jwt/auth" or auth != expected:
                    body = (b'{"errors":[{"code":"UNAUTHORIZED",'
                            b'"message":"HTTP Basic: Access denied"}]}')
                    self.send_response(401)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                query = parse_qs(url.query)
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else (
                        "", "", "")
                    if kind == "repository":
                        access.append({"type": kind, "name": name,
                                       "actions": actions.split(",")})
                token = server.sign(access)
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                                   "issued_at": dt.datetime.now(dt.UTC).isoformat()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # GitLab's realm is <external_url>/jwt/auth, and CI jobs get that URL as CI_SERVER_URL
        self.server_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.realm = f"{self.server_url}/jwt/auth"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, access: list[dict[str, object]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": self.username, "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
