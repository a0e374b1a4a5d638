"""The Docker engine must be running for these tests (scripts/test starts it)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.core.conftest import lamina, tree
from tests.publish.conftest import tls_registry

__all__ = ["docker_engine", "lamina", "tls_registry", "tree"]


@pytest.fixture
def docker_engine() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        pytest.fail(f"Docker engine not reachable ({exc}); run scripts/services")
    return client
