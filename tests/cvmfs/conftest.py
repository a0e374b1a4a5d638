"""Fixtures for the CVMFS tests: a small project whose store records publications, a CLI
runner, and a fake GitLab holding the sync repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.core.conftest import CliResult, lamina
from tests.cvmfs.fake_gitlab import DEVELOPER, FakeGitLab

__all__ = ["CliResult", "lamina"]

CASES = Path(__file__).resolve().parent.parent / "cases" / "wishlist"
TOKEN = "glpat-analyst-Secret-4242"  # the analyst (no push access upstream)
MAINTAINER_TOKEN = "glpat-maintainer-Secret-9999"
PARENT = "registry.hub.docker.com/library/debian:12@sha256:" + "a" * 64


def digest(char: str) -> str:
    return "sha256:" + char * 64


def publication(tags: list[str], index: str = "1", amd64: str = "2", arm64: str = "3",
                size: int = 734_000_000) -> dict[str, Any]:
    return {"tags": tags, "index_digest": digest(index),
            "platforms": ["linux/amd64", "linux/arm64"], "size": size,
            "children": {"amd64": digest(amd64), "arm64": digest(arm64)}}


@dataclass
class Project:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / ".lamina" / "store"

    def publish(self, image: str, publications: dict[str, Any]) -> None:
        path = self.store / "lamina" / image / "published.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(publications, indent=2, sort_keys=True) + "\n")

    def set_cvmfs(self, **section: Any) -> None:
        """Rewrite recipe.yaml with this ``cvmfs:`` section (JSON is YAML)."""
        (self.root / "recipe.yaml").write_text(
            "name: hepstack\nplatforms: [linux/amd64, linux/arm64]\n"
            f"cvmfs: {json.dumps(section)}\n")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """Two images (app, ml on top of it); nothing published yet."""
    root = tmp_path / "proj"
    for name, parent in (("app", PARENT), ("ml", "app")):
        (root / "images" / name).mkdir(parents=True)
        (root / "images" / name / "image.yaml").write_text(f"parent: {parent}\nlayers: []\n")
    proj = Project(root)
    proj.set_cvmfs()
    return proj


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and tokens come only from what each test sets."""
    for name in ("LAMINA_GITLAB_TOKEN", "CI_JOB_TOKEN", "LAMINA_GITLAB_URL",
                 "LAMINA_CVMFS_PROJECT", "LAMINA_CVMFS_BRANCH", "LAMINA_CVMFS_FORK",
                 "LAMINA_CVMFS_FILE", "LAMINA_STORE", "LAMINA_PROJECT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gitlab() -> Iterator[FakeGitLab]:
    """unpacked/sync with the upstream-style wishlist; `analyst` may only read it,
    `maintainer` is a Developer there."""
    fake = FakeGitLab()
    fake.add_user("analyst", TOKEN)
    fake.add_user("maintainer", MAINTAINER_TOKEN)
    text = (CASES / "upstream-four-space" / "recipe.yaml").read_text()
    fake.add_project("unpacked/sync", {"recipe.yaml": text, "README.md": "sync\n"},
                     members={"maintainer": DEVELOPER})
    fake.start()
    yield fake
    fake.stop()

