"""A loopback HTTP proxy in front of the test registry that can misbehave on purpose."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

DROP = 0  # a rule answering (DROP, b"") closes the connection without a response
Rule = Callable[[str, str, dict[str, str], bytes], tuple[int, bytes] | None]


class FaultyProxy:
    """Forwards to ``upstream`` (https) unless ``rule`` answers the request itself."""

    def __init__(self, upstream: str, ca_file: str, rule: Rule) -> None:
        self.upstream = upstream
        self.ca_file = ca_file
        self.rule = rule
        self.faults = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                answer = proxy.rule(self.command, self.path, headers, body)
                if answer is not None:
                    with proxy.lock:
                        proxy.faults += 1
                    status, payload = answer
                    if status == DROP:
                        # no answer at all: the client sees the connection closed under it
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                upstream = requests.request(
                    self.command, f"https://{proxy.upstream}{self.path}", headers=headers,
                    data=body, verify=proxy.ca_file, allow_redirects=False, timeout=30)
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.items():
                    if key.lower() in ("content-length", "transfer-encoding", "connection",
                                       "content-encoding"):
                        continue
                    if key.lower() == "location":
                        value = value.replace(f"https://{proxy.upstream}", "")
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.content)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
