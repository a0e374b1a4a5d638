"""Durations read from the environment (``LAMINA_BUILD_TIMEOUT``, ``LAMINA_TEST_TIMEOUT``): one
reading and one refusal for all of them, so a bad value is never taken for the default."""

from __future__ import annotations

import os

from lamina.errors import UsageError


def positive_seconds(name: str, default: float) -> float:
    """``$name`` as a positive number of seconds, ``default`` when unset or empty; anything
    else is a usage error naming the variable."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{name}: expected a positive number of seconds, got {raw[:40]!r}")
    return value
