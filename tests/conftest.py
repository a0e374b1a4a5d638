"""The whole suite's one hook: files holding a ``slow`` test run first.

``scripts/test`` runs two workers, each taking whole files in collection order
(``--dist loadfile``). A file of minutes-long tests (debootstrap under qemu, the shipped
framework's pip installs, the notebook tree) that started last would leave one worker idle
while the other finished it; started first, the short files fill the other worker beside it.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: order kept otherwise
