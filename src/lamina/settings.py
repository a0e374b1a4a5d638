"""Settings with one precedence: flag > ``LAMINA_<SETTING>`` > ``recipe.yaml`` > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina import redact
from lamina.errors import UsageError
from lamina.recipe import DEFAULT_EPOCH, Recipe


def resolve(flag: Any, env_name: str, recipe_value: Any, default: Any) -> Any:
    if flag is not None:
        return flag
    env = os.environ.get(env_name)
    if env not in (None, ""):
        return env
    if recipe_value is not None:
        return recipe_value
    return default


@dataclass(frozen=True)
class Settings:
    """Where things live and how builds run, resolved once per command."""

    project: Path
    store: Path
    state: Path  # logs, caches, test records: everything lamina keeps besides images
    jobs: int
    epoch: int
    ca_bundle: Path | None
    builder: str

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def cache(self) -> Path:
        return self.state / "cache"


# SOURCE_DATE_EPOCH is whole seconds since 1970 (reproducible-builds.org/specs/source-date-epoch);
# the image's `created` time is RFC 3339, whose years end at 9999 (Go's time.MarshalJSON, which
# buildah and skopeo use, refuses later ones), and Python's datetime ends there too.
EPOCH_MIN = 0
EPOCH_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z


def epoch_source(flag: int | None, recipe: Recipe) -> str:
    """Where the epoch in force comes from, as the user would write it."""
    if flag is not None:
        return "--source-date-epoch"
    for name in ("LAMINA_SOURCE_DATE_EPOCH", "SOURCE_DATE_EPOCH"):
        if os.environ.get(name) not in (None, ""):
            return name
    if recipe.settings.get("source_date_epoch") is not None:
        return f"{recipe.root / 'recipe.yaml'}: source_date_epoch"
    return "the default epoch"


def checked_epoch(value: int, source: str) -> int:
    """Refuse an epoch no image timestamp can carry, in one line that says the valid range."""
    if not EPOCH_MIN <= value <= EPOCH_MAX:
        raise UsageError(f"{source}: {value} is outside the valid range of seconds since "
                         f"1970: {EPOCH_MIN} to {EPOCH_MAX} (9999-12-31T23:59:59Z)")
    return value


def project_dir(flag: str | None) -> Path:
    return Path(resolve(flag, "LAMINA_PROJECT", None, ".")).resolve()


def settings_for(recipe: Recipe, *, store: str | None = None, jobs: int | None = None,
                 ca_bundle: str | None = None, epoch: int | None = None,
                 builder: str | None = None) -> Settings:
    cfg = recipe.settings
    store_path = Path(resolve(store, "LAMINA_STORE", cfg.get("store"), ".lamina/store"))
    if not store_path.is_absolute():
        store_path = recipe.root / store_path
    # relative to the project, as the store is: with `-C DIR` from elsewhere, logs and
    # caches must not land in the current directory
    state_path = Path(resolve(None, "LAMINA_STATE", None, ".lamina"))
    if not state_path.is_absolute():
        state_path = recipe.root / state_path
    raw_jobs = resolve(jobs, "LAMINA_JOBS", cfg.get("jobs"), 2)
    try:
        jobs_value = int(raw_jobs)
    except ValueError:
        jobs_value = 0
    if jobs_value < 1 or isinstance(raw_jobs, bool):
        where = ("--jobs" if jobs is not None else "LAMINA_JOBS"
                 if os.environ.get("LAMINA_JOBS") not in (None, "")
                 else f"{recipe.root / 'recipe.yaml'}: jobs")
        raise UsageError(f"{where}: expected a whole number of nodes of at least 1, got "
                         f"{str(raw_jobs)[:40]!r}")
    # The ecosystem-wide SOURCE_DATE_EPOCH counts as a LAMINA_ variable of lower rank.
    recipe_epoch = resolve(None, "SOURCE_DATE_EPOCH", cfg.get("source_date_epoch"), None)
    raw_epoch = resolve(epoch, "LAMINA_SOURCE_DATE_EPOCH", recipe_epoch, DEFAULT_EPOCH)
    try:
        epoch_value = int(raw_epoch)
    except ValueError:
        raise UsageError(f"{epoch_source(epoch, recipe)}: expected whole seconds since 1970 "
                         f"({EPOCH_MIN} to {EPOCH_MAX}), got {str(raw_epoch)[:40]!r}") from None
    epoch_value = checked_epoch(epoch_value, epoch_source(epoch, recipe))
    if jobs_value < 1:
        raise UsageError("jobs must be at least 1")
    ca_raw = resolve(ca_bundle, "LAMINA_CA_BUNDLE", None, None)
    ca_path: Path | None = None
    if ca_raw:
        ca_path = Path(ca_raw).resolve()
        if not ca_path.is_file():
            raise UsageError(f"CA bundle not found: {ca_path} (from --ca-bundle or "
                             "LAMINA_CA_BUNDLE)")
        redact.register_file_lines(str(ca_path))
    builder_value = str(resolve(builder, "LAMINA_BUILDER", cfg.get("builder"), "buildah"))
    if builder_value not in ("buildah", "docker"):
        raise UsageError(f"unknown builder '{builder_value}' (expected buildah or docker)")
    return Settings(project=recipe.root, store=store_path, state=state_path, jobs=jobs_value,
                    epoch=epoch_value, ca_bundle=ca_path, builder=builder_value)
