"""Fixtures: a fake Harbor on loopback, a client for it, and the in-process CLI runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lamina.harbor import HarborClient
from tests.core.conftest import lamina
from tests.harbor.fake_harbor import FakeHarbor

__all__ = ["client", "harbor", "harbor_env", "lamina"]

ADMIN, PASSWORD = "admin", "Harbor12345-not-a-real-one"


@pytest.fixture
def harbor() -> Iterator[FakeHarbor]:
    fake = FakeHarbor(users={ADMIN: PASSWORD}).start()
    yield fake
    fake.stop()


@pytest.fixture
def client(harbor: FakeHarbor) -> HarborClient:
    """Pages of two items, so every list with more than two entries is paged for real."""
    return HarborClient(harbor.url, ADMIN, PASSWORD, page_size=2)


@pytest.fixture
def harbor_env(harbor: FakeHarbor, monkeypatch: pytest.MonkeyPatch) -> FakeHarbor:
    monkeypatch.setenv("LAMINA_HARBOR_URL", harbor.url)
    monkeypatch.setenv("LAMINA_HARBOR_USERNAME", ADMIN)
    monkeypatch.setenv("LAMINA_HARBOR_PASSWORD", PASSWORD)
    return harbor
