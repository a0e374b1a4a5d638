"""The one credential store: every registry credential lamina knows, each bound to one host.

A credential is only ever sent to the ``host[:port]`` it was given for (``[::1]:5000`` for
IPv6); nothing is "for any host". The sources, in precedence order:

1. ``LAMINA_REGISTRY_USERNAME``/``LAMINA_REGISTRY_PASSWORD``: bound to
   ``LAMINA_REGISTRY_HOST`` when set, else to the target registry of the command (``--to``,
   ``--against``, the recipe's ``targets``; for ``lamina unpack`` the recipe's targets and
   ``LAMINA_TARGET``). Targets on two registries make them ambiguous: refused, set
   ``LAMINA_REGISTRY_HOST``.
2. GitLab CI's ``CI_REGISTRY_USER``/``CI_REGISTRY_PASSWORD`` (else ``gitlab-ci-token`` with
   ``CI_JOB_TOKEN``): bound to ``CI_REGISTRY`` and to the host of ``CI_SERVER_URL``. GitLab's
   registry sends clients to GitLab itself for tokens: its ``auth.token.realm`` is
   ``https://<gitlab>/jwt/auth`` (gitlabhq ``doc/administration/packages/
   container_registry.md``, "At the absolute minimum ... as the realm"), and GitLab hands the
   job these variables for both.
3. containers/docker auth files, read the way containers/image does
   (``pkg/docker/config/config.go``: ``getAuthFilePaths``, ``findCredentialsInFile``,
   ``normalizeAuthFileKey``): ``--authfile`` or ``REGISTRY_AUTH_FILE`` alone when given, else
   ``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/<uid>/auth.json``),
   ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config``), ``$DOCKER_CONFIG/config.json``
   (``~/.docker/config.json``), ``~/.dockercfg``. Each entry is bound to the host of its key;
   a ``host/ns`` key only to repositories under ``ns``; ``https://host/v1/`` style keys to
   ``host``. ``credHelpers`` entries are passed on to skopeo for their host (lamina itself
   does not run helpers).

skopeo gets a private auth file (0600, removed after) holding ONLY the entry for the
repository it is about to contact (:meth:`CredentialStore.skopeo_authfile`), never the
user's files: ``lamina unpack docker://other/...`` cannot reach the target's password.
Every secret is registered for redaction, its ``user:password`` base64 form too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lamina import redact
from lamina.errors import UsageError
from lamina.netloc import host_port, origin_of

MAX_AUTH_FILE = 1 << 20
DOCKER_HUB = {"docker.io": "index.docker.io", "registry-1.docker.io": "index.docker.io"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""
    identity_token: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.username} (from {self.source})"

    def basic(self) -> str:
        """The ``Authorization`` value for HTTP Basic."""
        return "Basic " + base64.b64encode(
            f"{self.username}:{self.password}".encode()).decode("ascii")

    def register(self) -> None:
        for secret in (self.password, self.identity_token,
                       base64.b64encode(f"{self.username}:{self.password}".encode()).decode()):
            redact.register(secret)


def host_key(text: str) -> str:
    """``host[:port]`` in the form credentials are bound to (lower case, IPv6 bracketed,
    Docker Hub's aliases as one); ValueError when ``text`` is not a host[:port]."""
    if not text or any(c in text for c in "/@?#\\ \t\r\n") or text != text.strip():
        raise ValueError(f"not a host[:port]: {text!r}")
    parts = urlsplit(f"//{text}")
    if not parts.hostname:
        raise ValueError(f"not a host[:port]: {text!r}")
    port = parts.port  # ValueError when not a number in range
    host = host_port(parts.hostname, port, scheme="")
    return DOCKER_HUB.get(host, host)


def _safe_host_key(text: str) -> str | None:
    try:
        return host_key(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Binding:
    """One credential (or credential helper) bound to a host, maybe to a namespace of it."""

    host: str
    namespace: str  # "" for the whole host, else "ns" / "ns/image"
    credentials: Credentials | None
    helper: str = ""  # a credHelpers entry: docker-credential-<helper>, for skopeo
    rank: tuple[int, int] = (0, 0)  # (source order, 0 exact key / 1 normalised key)

    def covers(self, host: str, repository: str | None) -> bool:
        if host != self.host:
            return False
        if not self.namespace:
            return True
        return repository is not None and (repository == self.namespace
                                           or repository.startswith(self.namespace + "/"))


class CredentialStore:
    """Bindings, looked up by host and repository; empty means "anonymous everywhere"."""

    def __init__(self, bindings: Sequence[Binding] = ()) -> None:
        self.bindings = list(bindings)
        for binding in self.bindings:
            if binding.credentials is not None:
                binding.credentials.register()

    @classmethod
    def load(cls, *, targets: Iterable[str] = (), authfile: Path | None = None,
             env: Mapping[str, str] | None = None) -> CredentialStore:
        """Every source of the module docstring; ``targets`` are the registries of the
        command, which ``LAMINA_REGISTRY_USERNAME``/``PASSWORD`` are bound to."""
        env = os.environ if env is None else env
        bindings = [*_lamina_env(env, targets), *_gitlab_ci(env)]
        bindings += _auth_files(env, authfile, first_rank=2)
        return cls(bindings)

    def lookup(self, host: str, repository: str | None = None) -> Binding | None:
        """The binding containers/image would pick: the first source that has one, in it an
        exact key (the longest namespace first), then a normalised key."""
        key = _safe_host_key(host)
        if key is None:
            return None
        found = [b for b in self.bindings if b.covers(key, repository)]
        if not found:
            return None
        return min(found, key=lambda b: (b.rank, -len(b.namespace)))

    def for_host(self, host: str, repository: str | None = None) -> Credentials | None:
        binding = self.lookup(host, repository)
        return binding.credentials if binding is not None else None

    @contextlib.contextmanager
    def skopeo_authfile(self, registry: str, repository: str | None = None) -> Iterator[Path]:
        """A private auth file for one skopeo run against ``registry/repository``: the one
        entry lamina would use there, keyed by that repository (containers/image matches the
        most specific key first), or no entry at all."""
        binding = self.lookup(registry, repository)
        document: dict[str, Any] = {"auths": {}}
        if binding is not None and binding.credentials is not None:
            creds = binding.credentials
            entry = {"auth": base64.b64encode(
                f"{creds.username}:{creds.password}".encode()).decode()}
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
            document["auths"][f"{registry}/{repository}" if repository else registry] = entry
        elif binding is not None and binding.helper:
            document["credHelpers"] = {registry: binding.helper}
        with tempfile.TemporaryDirectory(prefix="lamina-auth-") as tmp:
            path = Path(tmp) / "auth.json"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle)
            yield path


# -- sources --------------------------------------------------------------------------

def _lamina_env(env: Mapping[str, str], targets: Iterable[str]) -> list[Binding]:
    user = env.get("LAMINA_REGISTRY_USERNAME") or ""
    password = env.get("LAMINA_REGISTRY_PASSWORD") or ""
    if not user or not password:
        return []
    creds = Credentials(user, password, "LAMINA_REGISTRY_USERNAME/PASSWORD")
    creds.register()
    explicit = (env.get("LAMINA_REGISTRY_HOST") or "").strip()
    if explicit:
        key = _safe_host_key(explicit)
        if key is None:
            raise UsageError(f"LAMINA_REGISTRY_HOST={explicit[:80]!r}: expected the "
                             "host[:port] of one registry")
        return [Binding(key, "", creds, rank=(0, 0))]
    hosts: list[str] = []
    for target in targets:
        key = _safe_host_key(target)
        if key is not None and key not in hosts:
            hosts.append(key)
    if len(hosts) > 1:
        raise UsageError("LAMINA_REGISTRY_USERNAME/PASSWORD are for one registry, but the "
                         f"targets are on {', '.join(hosts)}: set LAMINA_REGISTRY_HOST to the "
                         "one they are for (and give the others in an auth file)")
    return [Binding(host, "", creds, rank=(0, 0)) for host in hosts]


def _gitlab_ci(env: Mapping[str, str]) -> list[Binding]:
    registry = _safe_host_key(env.get("CI_REGISTRY") or "")
    if registry is None:
        return []
    if env.get("CI_REGISTRY_USER") and env.get("CI_REGISTRY_PASSWORD"):
        creds = Credentials(env["CI_REGISTRY_USER"], env["CI_REGISTRY_PASSWORD"],
                            "CI_REGISTRY_USER/PASSWORD")
    elif env.get("CI_JOB_TOKEN"):
        creds = Credentials("gitlab-ci-token", env["CI_JOB_TOKEN"], "CI_JOB_TOKEN")
    else:
        return []
    hosts = [registry]
    try:
        server = origin_of(env.get("CI_SERVER_URL") or "").host
    except ValueError:
        server = None
    if server is not None and server not in hosts:
        hosts.append(server)  # the /jwt/auth token realm
    return [Binding(host, "", creds, rank=(1, 0)) for host in hosts]


def auth_file_paths(env: Mapping[str, str], explicit: Path | None) -> list[tuple[Path, bool]]:
    """The files containers/image reads, in its order, each with its legacy-format flag."""
    if explicit is not None:
        return [(explicit, False)]
    if env.get("REGISTRY_AUTH_FILE"):
        return [(Path(env["REGISTRY_AUTH_FILE"]), False)]
    home = Path(env.get("HOME") or Path.home())
    runtime = env.get("XDG_RUNTIME_DIR")
    paths = [Path(runtime, "containers", "auth.json") if runtime
             else Path(f"/run/containers/{os.getuid()}/auth.json")]
    paths.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config", "containers",
                      "auth.json"))
    paths.append(Path(env["DOCKER_CONFIG"], "config.json") if env.get("DOCKER_CONFIG")
                 else home / ".docker" / "config.json")
    return [(p, False) for p in paths] + [(home / ".dockercfg", True)]


def _read(path: Path, required: bool) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_AUTH_FILE + 1)
        data = json.loads(raw) if len(raw) <= MAX_AUTH_FILE else None
    except FileNotFoundError:
        return None  # containers/image reads a missing file as an empty one
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        if required:
            raise UsageError(f"auth file {path}: not a containers auth file (JSON with "
                             "\"auths\")")
        return None
    return data


def _auth_files(env: Mapping[str, str], explicit: Path | None,
                first_rank: int) -> list[Binding]:
    required = explicit is not None or bool(env.get("REGISTRY_AUTH_FILE"))
    out: list[Binding] = []
    for index, (path, legacy) in enumerate(auth_file_paths(env, explicit)):
        data = _read(path, required)
        if data is not None:
            out += _file_bindings(data, legacy, str(path), first_rank + index)
    return out


def _file_bindings(data: dict[str, Any], legacy: bool, source: str,
                   rank: int) -> list[Binding]:
    out: list[Binding] = []
    helpers = data.get("credHelpers") if not legacy else None
    for key, helper in (helpers.items() if isinstance(helpers, dict) else []):
        host = _safe_host_key(str(key))
        if host is not None and isinstance(helper, str) and helper:
            out.append(Binding(host, "", None, helper=helper, rank=(rank, -1)))
    entries = data if legacy else data.get("auths")
    for key, entry in (entries.items() if isinstance(entries, dict) else []):
        if not isinstance(entry, dict):
            continue
        creds = _decode(entry, source)
        if creds is None:
            continue
        scoped = _scoped_key(str(key), legacy)
        if scoped is not None:
            host, namespace, normalised = scoped
            out.append(Binding(host, namespace, creds, rank=(rank, int(normalised))))
    return out


def _scoped_key(key: str, legacy: bool) -> tuple[str, str, bool] | None:
    """(host, namespace, normalised) a key binds to: ``normalizeAuthFileKey`` for URL and
    legacy keys (host only, looked at after the exact keys), the key itself otherwise."""
    stripped = key.removeprefix("http://").removeprefix("https://")
    if legacy or stripped != key:
        name = stripped.split("/", 1)[0]
        host = _safe_host_key(name)
        return (host, "", key != name) if host is not None else None
    name, _, namespace = key.partition("/")
    host = _safe_host_key(name)
    if host is None or "@" in namespace or ":" in namespace:
        return None  # containers/image validateKey refuses these keys
    return host, namespace.strip("/"), False


def _decode(entry: dict[str, Any], source: str) -> Credentials | None:
    auth = entry.get("auth")
    if not isinstance(auth, str) or not auth:
        return None
    try:
        decoded = base64.b64decode(auth, validate=True).decode("utf-8")
    except ValueError:
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None  # as containers/image: an entry without ':' is skipped
    token = entry.get("identitytoken")
    return Credentials(user, password.strip("\x00"), source,
                       token if isinstance(token, str) else "")
