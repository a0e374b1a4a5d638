"""What every build backend does for one node: build, export to the store, run a test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.render import BuildUnit
from lamina.settings import Settings
from lamina.store import Store

StepCallback = Callable[[str], None]


@dataclass(frozen=True)
class TestOutcome:
    passed: bool
    exit_code: int
    output_tail: str
    seconds: float


class Builder(Protocol):
    name: str

    def check(self) -> list[str]:
        """Problems that make this backend unusable here (empty when ready)."""
        ...

    def build(self, unit: BuildUnit, context: Path, settings: Settings, store: Store,
              log: Path, step: StepCallback) -> None: ...

    def export(self, unit: BuildUnit, store: Store, log: Path) -> None: ...

    def ensure_local(self, unit: BuildUnit, store: Store, log: Path) -> None:
        """Make the node's image available to this backend (pulling from the store)."""
        ...

    def run_test(self, unit: BuildUnit, command: str, user: str | None, log: Path,
                 timeout: float) -> TestOutcome: ...

    def output_of(self, unit: BuildUnit, command: str) -> str:
        """What ``command`` prints inside the node's image."""
        ...


def write_context(unit: BuildUnit, context: Path, rootfs_tars: dict[str, Path]) -> Path:
    """Lay out the build context: the Containerfile and exactly the files the layers read."""
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    for rel, source in sorted(unit.context_files().items()):
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target, follow_symlinks=False)
    for name, tar in rootfs_tars.items():
        target = context / name
        try:
            target.hardlink_to(tar)
        except OSError:
            shutil.copy2(tar, target)
    containerfile = context / "Containerfile"
    containerfile.write_text(unit.containerfile())
    return containerfile
