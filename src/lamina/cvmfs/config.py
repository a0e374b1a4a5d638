"""The ``cvmfs:`` section of recipe.yaml, with the usual precedence: flag >
``LAMINA_<SETTING>`` environment variable > recipe.yaml > default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.settings import resolve

DEFAULT_GITLAB_URL = "https://gitlab.cern.ch"
DEFAULT_PROJECT = "unpacked/sync"
DEFAULT_BRANCH = "master"  # upstream also has `multiarch`, unpacked with DUCC --multi-arch
DEFAULT_FILE = "recipe.yaml"


@dataclass(frozen=True)
class CvmfsConfig:
    gitlab_url: str
    project: str
    branch: str
    file: str
    fork: str | None
    images: tuple[str, ...] | None


def cvmfs_config(section: dict[str, Any] | None, *, gitlab_url: str | None = None,
                 project: str | None = None, branch: str | None = None,
                 fork: str | None = None, file: str | None = None) -> CvmfsConfig:
    cfg = section or {}
    images = cfg.get("images")
    return CvmfsConfig(
        gitlab_url=str(resolve(gitlab_url, "LAMINA_GITLAB_URL", cfg.get("gitlab_url"),
                               DEFAULT_GITLAB_URL)).rstrip("/"),
        project=str(resolve(project, "LAMINA_CVMFS_PROJECT", cfg.get("project"),
                            DEFAULT_PROJECT)).strip("/"),
        branch=str(resolve(branch, "LAMINA_CVMFS_BRANCH", cfg.get("branch"), DEFAULT_BRANCH)),
        file=str(resolve(file, "LAMINA_CVMFS_FILE", cfg.get("file"), DEFAULT_FILE)),
        fork=resolve(fork, "LAMINA_CVMFS_FORK", cfg.get("fork"), None),
        images=tuple(images) if images is not None else None,
    )
