"""What every build backend does for one node: build, export, give a test container; bounds.

A node's tests run in one container the backend provides (:meth:`Builder.test_container`),
driven by :mod:`lamina.testrunner`. A backend never writes the store: :meth:`Builder.export`
writes the built image into a private staging layout, which the build run verifies and then
has the store take in (:mod:`lamina.staging`). Every step a backend runs is bounded in time;
a step that runs out fails its node with one line naming the step.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from lamina.envseconds import positive_seconds
from lamina.filemodes import copy_tree
from lamina.pipcache import LINK as PIP_CACHE_LINK
from lamina.render import BuildUnit
from lamina.settings import Settings
from lamina.staging import ExportCount, StagingLayout
from lamina.store import Store
from lamina.testrunner import TestContainer

StepCallback = Callable[[str], None]

# Bounds for a hung tool, not performance targets (a HEP framework may build for hours).
DEFAULT_BUILD_TIMEOUT = 6 * 3600.0
STEP_TIMEOUT = 3600.0  # export, loading an image, starting a container
QUICK_TIMEOUT = 120.0  # inspect, rm
PROBE_TIMEOUT = 600.0  # the package probe


def build_timeout() -> float:
    """Seconds one node's build may take: ``LAMINA_BUILD_TIMEOUT``, default six hours."""
    return positive_seconds("LAMINA_BUILD_TIMEOUT", DEFAULT_BUILD_TIMEOUT)


class Builder(Protocol):
    name: str

    def check(self) -> list[str]:
        """Problems that make this backend unusable here (empty when ready)."""
        ...

    def build(self, unit: BuildUnit, context: Path, settings: Settings, store: Store,
              log: Path, step: StepCallback) -> None: ...

    def export(self, unit: BuildUnit, staging: StagingLayout, log: Path) -> ExportCount:
        """Write the built image into ``staging`` as ``unit.store_ref``, with the key as the
        manifest annotation ``dev.lamina.key``, compressing and writing only the layers the
        parent in the store does not have (:mod:`lamina.staging`)."""
        ...

    def ensure_local(self, unit: BuildUnit, store: Store, log: Path) -> None:
        """Make the node's image available to this backend (pulling from the store)."""
        ...

    def test_container(self, unit: BuildUnit, results: Path
                       ) -> AbstractContextManager[TestContainer]:
        """One container of the node's (local) image in which all its tests run, with
        ``results`` bind-mounted at :data:`lamina.testrunner.RESULTS_MOUNT`; removed when
        the block ends."""
        ...

    def output_of(self, unit: BuildUnit, command: str) -> str:
        """What ``command`` prints inside the node's image."""
        ...


def pip_cache(settings: Settings) -> Path:
    """lamina's wheel cache on the host (see :mod:`lamina.pipcache`)."""
    return settings.cache / "pip"


def write_context(unit: BuildUnit, context: Path, rootfs_tars: dict[str, Path],
                  cache: Path | None = None) -> Path:
    """Lay out the build context in ``context`` (a new directory private to this run, see
    :func:`lamina.scratch.owned_dir`): the Containerfile, exactly the files the layers
    read, and for pip layers the link to the pip ``cache``.

    The layers' files are copied with git's modes (:func:`lamina.filemodes.copy_tree`):
    ``COPY`` takes each file's mode from the context into the layer, and a script may copy
    its inputs too, so the checkout's umask must stop here. Rootfs tars carry their own
    modes inside.
    """
    context.mkdir(parents=True, exist_ok=True)
    if cache is not None and any(layer.pip_cache for layer in unit.layers):
        cache.mkdir(parents=True, exist_ok=True)
        (context / PIP_CACHE_LINK).symlink_to(cache.resolve(), target_is_directory=True)
    for rel, source in sorted(unit.context_files().items()):
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_tree(source, target)
    for name, tar in rootfs_tars.items():
        target = context / name
        try:
            target.hardlink_to(tar)
        except OSError:
            shutil.copy2(tar, target)
    containerfile = context / "Containerfile"
    containerfile.write_text(unit.containerfile())
    return containerfile
