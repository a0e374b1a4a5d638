"""Registry credentials for the tools lamina drives, without ever putting them on a command line.

Sources, first match wins: ``LAMINA_REGISTRY_USERNAME``/``LAMINA_REGISTRY_PASSWORD``; GitLab
CI's ``CI_REGISTRY_USER``/``CI_REGISTRY_PASSWORD`` (or ``gitlab-ci-token`` with
``CI_JOB_TOKEN``) when the host is ``CI_REGISTRY``; otherwise nothing, and skopeo falls back to
the containers and docker auth files it already knows. Found credentials are written to a
private temporary auth file (0600) handed to skopeo with ``--authfile`` and removed after.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lamina import redact


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""

    def __str__(self) -> str:
        return f"{self.username} (from {self.source})"


def from_environment(host: str) -> Credentials | None:
    env = os.environ
    if env.get("LAMINA_REGISTRY_USERNAME") and env.get("LAMINA_REGISTRY_PASSWORD"):
        return Credentials(env["LAMINA_REGISTRY_USERNAME"], env["LAMINA_REGISTRY_PASSWORD"],
                           "LAMINA_REGISTRY_USERNAME/PASSWORD")
    if env.get("CI_REGISTRY") and env["CI_REGISTRY"] == host:
        if env.get("CI_REGISTRY_USER") and env.get("CI_REGISTRY_PASSWORD"):
            return Credentials(env["CI_REGISTRY_USER"], env["CI_REGISTRY_PASSWORD"],
                               "CI_REGISTRY_USER/PASSWORD")
        if env.get("CI_JOB_TOKEN"):
            return Credentials("gitlab-ci-token", env["CI_JOB_TOKEN"], "CI_JOB_TOKEN")
    return None


@contextlib.contextmanager
def authfile_for(host: str, explicit: Path | None) -> Iterator[Path | None]:
    """The auth file to hand to skopeo for ``host``: the explicit one, a temporary one made
    from environment credentials, or None (skopeo's defaults)."""
    if explicit is not None:
        yield explicit
        return
    creds = from_environment(host)
    if creds is None:
        yield None
        return
    redact.register(creds.password)
    with tempfile.TemporaryDirectory(prefix="lamina-auth-") as tmp:
        path = Path(tmp) / "auth.json"
        token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": {host: {"auth": token}}}, handle)
        yield path


def _auth_files(explicit: Path | None) -> list[Path]:
    if explicit is not None:
        return [explicit]
    env = os.environ
    candidates = []
    if env.get("REGISTRY_AUTH_FILE"):
        candidates.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(env.get("HOME") or Path.home())
    candidates += [home / ".config" / "containers" / "auth.json", home / ".docker" / "config.json"]
    return candidates


def credentials_for(host: str, authfile: Path | None = None) -> Credentials | None:
    """Credentials for lamina's own HTTP checks, from the same sources skopeo would use:
    the environment first, then the given auth file or the containers/docker default ones."""
    found = from_environment(host)
    if found is not None:
        return found
    for path in _auth_files(authfile):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        entry = (data.get("auths") or {}).get(host) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str):
            continue
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            continue
        redact.register(password)
        return Credentials(user, password, str(path))
    return None
