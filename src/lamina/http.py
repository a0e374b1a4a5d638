"""Every HTTP request lamina makes, bounded: one deadline, one size cap, no stray credentials.

Why one place: the registry client, the Harbor transport and the GitLab client (python-gitlab
with this session) all talk to servers lamina does not trust. A server can answer one byte
every few seconds (each read is within ``requests``' read timeout, so that timeout alone
never fires), send a 200 MB "manifest", redirect a request carrying a password to another
host, or put a password in a URL. :class:`BoundedSession` is a ``requests.Session`` that

* gives each request an OVERALL deadline (connect, headers and every body byte): a watchdog
  thread shuts the connection's socket down when the deadline passes, which wakes a read
  blocked anywhere (TLS handshake, status line, body), and the body is read in chunks against
  a monotonic clock;
* reads every response body fully, up to a cap (refused early from ``Content-Length``,
  otherwise while streaming), so callers get ``.content``/``.json()`` from bounded memory;
* never follows redirects (``allow_redirects`` is forced off: ``requests`` would re-add
  credentials from ``~/.netrc`` on the next hop), never keeps or sends cookies, and refuses a
  URL with ``user:password@``;
* refuses to send a request that carries credentials (``Authorization``, ``PRIVATE-TOKEN``,
  ``JOB-TOKEN``, ``Cookie``) to an origin outside :attr:`BoundedSession.credential_origins`,
  the origins its owner bound credentials to. The clients decide what to send; this is the
  net under them.

The deadline is ``LAMINA_HTTP_TIMEOUT`` seconds (default 60); an upload gets one more second
per MiB it sends. Caps follow containers/image (``internal/iolimits/iolimits.go``:
``MaxManifestBodySize`` 4 MiB, ``MaxAuthTokenBodySize`` 1 MiB).
"""

from __future__ import annotations

import contextlib
import heapq
import http.cookiejar
import itertools
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# re-exported: where a request goes and its deadline live in lamina.netloc (no requests)
from lamina.netloc import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from lamina.netloc import TIMEOUT_ENV as TIMEOUT_ENV
from lamina.netloc import Origin as Origin
from lamina.netloc import host_port as host_port
from lamina.netloc import http_timeout as http_timeout
from lamina.netloc import origin_of as origin_of

CONNECT_TIMEOUT = 10.0
MIB = 1 << 20
MANIFEST_MAX = 4 * MIB  # containers/image iolimits.MaxManifestBodySize
TOKEN_MAX = 1 * MIB  # containers/image iolimits.MaxAuthTokenBodySize
API_MAX = 4 * MIB  # JSON API answers (Harbor, GitLab, registry errors)
UPLOAD_FLOOR_BYTES_PER_S = 1 * MIB  # an upload's deadline grows by 1 s per MiB sent
CREDENTIAL_HEADERS = ("authorization", "private-token", "job-token", "cookie")
_CHUNK = 64 * 1024


def upload_deadline(size: int, base: float | None = None) -> float:
    """The deadline of a request that sends ``size`` bytes (a blob upload)."""
    return (base if base is not None else http_timeout()) + size / UPLOAD_FLOOR_BYTES_PER_S


class DeadlineExceeded(requests.RequestException):
    """No complete answer within the deadline (deliberately not a ``requests.Timeout``, so
    no library retries it: a server this slow once is slow again)."""


class ResponseTooLarge(requests.RequestException):
    """A response body over its cap."""


class CredentialsRefused(requests.RequestException):
    """A request would have carried credentials to an origin they are not bound to."""


# -- the watchdog -----------------------------------------------------------------------

class _Deadline:
    """One request's deadline and the sockets it used (to shut down when it passes).

    Sockets, not connections: ``http.client`` drops a connection's socket once a response
    that closes the connection has started, while the response still reads from it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if not self.expired:
                return
        _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # the plain socket's shutdown: SSLSocket.shutdown would also drop the TLS state under
    # the reading thread; this only makes its blocked read return
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread that fires deadlines in time order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline.at, next(self._ids), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lamina-http-deadline",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def disarm(self, deadline: _Deadline) -> None:
        with self._cond:
            self._heap = [item for item in self._heap if item[2] is not deadline]
            heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline.fire()


_WATCHDOG = _Watchdog()
_current = threading.local()


def _attach_current(sock: socket.socket | None) -> None:
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach_current(sock)  # before a TLS handshake, which wraps a new socket object
        return sock

    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)  # a kept-alive connection is reused without connect()
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _attach_current(sock)
        return sock

    def connect(self) -> None:
        super().connect()
        _attach_current(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach_current(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections report to the current request's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> urllib3.PoolManager:
        manager: urllib3.PoolManager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class _NoAuth(requests.auth.AuthBase):
    """Set as the session's auth so ``requests`` never falls back to ``~/.netrc``."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


def _no_cookies() -> http.cookiejar.DefaultCookiePolicy:
    return http.cookiejar.DefaultCookiePolicy(allowed_domains=[])


def carries_credentials(headers: Iterable[str]) -> bool:
    return any(name.lower() in CREDENTIAL_HEADERS for name in headers)


class BoundedSession(requests.Session):
    """A ``requests.Session`` with a deadline and a body cap on every request (see the
    module docstring). ``credential_origins`` is where requests carrying credentials may go;
    the owner adds an origin when it binds credentials to it."""

    def __init__(self, *, timeout: float | None = None, max_bytes: int = API_MAX,
                 credential_origins: Iterable[Origin] = ()) -> None:
        super().__init__()
        self.timeout = timeout if timeout is not None else http_timeout()
        self.max_bytes = max_bytes
        self.credential_origins: set[Origin] = set(credential_origins)
        self.auth = _NoAuth()
        self.cookies.set_policy(_no_cookies())
        adapter = _WatchedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                max_bytes: int | None = None, deadline: float | None = None,
                **kwargs: Any) -> requests.Response:
        """One request, its whole body read within ``deadline`` seconds (default: the
        session's) and ``max_bytes`` (default: the session's cap)."""
        text_url = url.decode() if isinstance(url, bytes) else url
        try:
            origin_of(text_url)
        except ValueError as exc:
            raise requests.exceptions.InvalidURL(f"refused: {exc}") from None
        seconds = self.timeout if deadline is None else deadline
        asked = kwargs.pop("timeout", None)
        if isinstance(asked, int | float) and asked > 0 and deadline is None:
            seconds = min(seconds, float(asked))
        limit = self.max_bytes if max_bytes is None else max_bytes
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        kwargs["timeout"] = (min(CONNECT_TIMEOUT, seconds), seconds)
        watch = _Deadline(seconds)
        _current.deadline = watch
        _WATCHDOG.arm(watch)
        try:
            response = super().request(method, url, *args, **kwargs)
            try:
                _read_body(response, limit, watch)
            finally:
                response.close()
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if watch.expired and not isinstance(exc, ResponseTooLarge | CredentialsRefused):
                raise DeadlineExceeded(f"no complete answer within {seconds:g} s "
                                       f"({TIMEOUT_ENV})") from None
            raise
        finally:
            _current.deadline = None
            _WATCHDOG.disarm(watch)
        self.cookies.clear()
        return response

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if carries_credentials(request.headers):
            try:
                origin = origin_of(url)
            except ValueError:
                origin = None
            if origin not in self.credential_origins:
                raise CredentialsRefused(
                    f"refused to send credentials to {origin or 'that URL'}: they are not "
                    "bound to it")
        kwargs["allow_redirects"] = False
        return super().send(request, **kwargs)


def _read_body(response: requests.Response, limit: int, watch: _Deadline) -> None:
    """Read the body into ``response._content``, bounded by ``limit`` and the deadline."""
    head = response.request is not None and response.request.method == "HEAD"
    declared = response.headers.get("Content-Length", "")
    if not head and declared.isdigit() and int(declared) > limit:  # HEAD: the size of a GET
        raise ResponseTooLarge(f"answer of {int(declared)} bytes is over the {limit}-byte "
                               "limit")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"answer is over the {limit}-byte limit")
        if watch.remaining() <= 0:
            watch.fire()
            raise DeadlineExceeded(f"no complete answer within {watch.seconds:g} s "
                                   f"({TIMEOUT_ENV})")
    response._content = bytes(body)
