"""Keep secrets out of logs and messages.

Any value of an environment variable whose name looks secret (password, token, secret,
auth) is replaced wherever it appears, as are values registered at run time (a password
read from an auth file, a robot secret). Redaction is applied at the few places text leaves
lamina: log files of tool runs and error messages.
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|AUTH|CREDENTIAL|API_KEY)", re.I)
_registered: set[str] = set()
_secret_lines: set[str] = set()


def register(secret: str | None) -> None:
    """Add a value to redact from now on (ignored when short enough to be ambiguous)."""
    if secret and len(secret) >= 4:
        _registered.add(secret)


def register_file_lines(path: str) -> None:
    """Treat every line of a file (a CA bundle, a key) as secret: a build step that prints it
    must not carry it into a log. Lines are matched whole, so this stays cheap for big
    bundles."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                stripped = line.strip()
                if len(stripped) >= 8 and not stripped.startswith("-----"):
                    _secret_lines.add(stripped)
    except OSError:
        pass


def _secrets() -> list[str]:
    found = set(_registered)
    for name, value in os.environ.items():
        if _SECRET_NAME.search(name) and value and len(value) >= 4:
            found.add(value)
    return sorted(found, key=len, reverse=True)


def redact(text: str) -> str:
    if _secret_lines:
        parts = text.splitlines(keepends=True)
        text = "".join("*** (secret file content)\n" if part.strip() in _secret_lines else part
                       for part in parts)
        for line in _secret_lines:
            if line in text:  # a secret line inside a longer one, e.g. a joined error tail
                text = text.replace(line, "***")
    for secret in _secrets():
        if secret in text:
            text = text.replace(secret, "***")
    return text
