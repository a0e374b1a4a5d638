"""Make-like planning: for each (image, platform), up to date, to build (and why), or not.

Keys are computed from inputs alone, parents first, so the whole plan is known before
anything is built: a child whose parent will rebuild gets a new key too, and the reason
names the parent. Comparing a node's named inputs with those recorded at its last build
says exactly which input changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lamina.external import ExternalResolver
from lamina.lock import no_wheel_reason
from lamina.noderecord import GOOD, UNTESTED, UNVERIFIED, check, tests_hash
from lamina.platforms import Platform
from lamina.recipe import Image, Recipe
from lamina.render import BuildUnit, build_unit
from lamina.store import Store

__all__ = ["BLOCKED", "BUILD", "EXCLUDED", "TEST", "UP_TO_DATE", "PlanEntry", "make_plan",
           "stored_status", "tests_hash"]

UP_TO_DATE = "up-to-date"
BUILD = "build"
TEST = "test"
BLOCKED = "blocked"
EXCLUDED = "excluded"


@dataclass
class PlanEntry:
    image: str
    platform: Platform
    status: str
    reason: str
    unit: BuildUnit | None = None
    remote: str | None = None  # where a registry checked with --against holds this key

    @property
    def key(self) -> str | None:
        return self.unit.key if self.unit else None

    def as_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "platform": self.platform.name,
            "key": self.key,
            "status": self.status,
            "reason": self.reason,
            "store_ref": self.unit.store_ref if self.unit else None,
            **({"remote": self.remote} if self.remote else {}),
        }


def platforms_of(recipe: Recipe, image_names: list[str]) -> list[Platform]:
    seen: list[Platform] = []
    for name in image_names:
        for platform in recipe.images[name].platforms:
            if platform not in seen:
                seen.append(platform)
    return sorted(seen)


def _describe_changes(now: dict[str, str], before: dict[str, str]) -> list[str]:
    changed = [k for k in now if k in before and now[k] != before[k]]
    added = [k for k in now if k not in before]
    removed = [k for k in before if k not in now]
    parts = [f"{k} changed" for k in changed]
    parts += [f"{k} added" for k in added]
    parts += [f"{k} removed" for k in removed]
    return parts


def make_plan(recipe: Recipe, store: Store, epoch: int, images: list[str] | None = None,
              platforms: list[Platform] | None = None,
              resolver: ExternalResolver | None = None) -> list[PlanEntry]:
    names = recipe.select(images)
    # once each: callers pass the platforms of the nodes they hold, one per node
    wanted_platforms = list(dict.fromkeys(platforms or platforms_of(recipe, names)))
    by_node: dict[tuple[str, Platform], PlanEntry] = {}
    entries: list[PlanEntry] = []
    for name in names:
        for platform in wanted_platforms:
            entry = _plan_node(recipe, store, epoch, name, platform, by_node, resolver)
            by_node[(name, platform)] = entry
            entries.append(entry)
    return entries


def _no_wheel(image: Image, platform: Platform) -> str | None:
    """The no-wheel verdict ``lamina lock`` left in a pip layer's lock for this platform."""
    for layer in image.layers:
        if layer.kind != "pip" or "{arch}" not in str(layer.spec.get("lock", "")):
            continue
        path = layer.file(("lock",), platform)
        if path.is_file():
            reason = no_wheel_reason(path.read_text())
            if reason:
                return f"layer {layer.name}: {reason} (lamina lock)"
    return None


def _plan_node(recipe: Recipe, store: Store, epoch: int, name: str, platform: Platform,
               by_node: dict[tuple[str, Platform], PlanEntry],
               resolver: ExternalResolver | None) -> PlanEntry:
    image = recipe.images[name]
    if platform not in image.platforms:
        return PlanEntry(name, platform, EXCLUDED, "platform not declared for this image")
    excluded = image.excluded(platform) or _no_wheel(image, platform)
    if excluded:
        return PlanEntry(name, platform, EXCLUDED, excluded)
    parent_key: str | None = None
    external_digest: str | None = None
    parent_status: str | None = None
    if image.parent_name is not None:
        parent = by_node.get((image.parent_name, platform))
        if parent is not None and parent.status == EXCLUDED:
            return PlanEntry(name, platform, EXCLUDED,
                             f"parent {image.parent_name} excluded ({parent.reason})")
        if parent is None or parent.unit is None:
            why = parent.reason if parent else "not planned"
            state = parent.status if parent else "missing"
            return PlanEntry(name, platform, BLOCKED,
                             f"parent {image.parent_name} is {state} on {platform} ({why})")
        parent_key = parent.unit.key
        parent_status = parent.status
    elif image.external is not None:
        resolver = resolver or ExternalResolver(None)
        try:
            external_digest = resolver.platform_digest(image.external, platform)
        except Exception as exc:
            return PlanEntry(name, platform, BLOCKED,
                             f"external parent {image.external.reference}: {exc}")
        if external_digest is None:
            return PlanEntry(name, platform, BLOCKED,
                             f"external parent {image.external.reference} has no {platform}")
    unit = build_unit(recipe, image, platform, epoch, parent_key, external_digest)
    status, reason = stored_status(recipe, store, unit)
    if status != BUILD or reason:
        return PlanEntry(name, platform, status, reason, unit)
    record = store.read_record(name, platform.arch)
    changes = _describe_changes(unit.inputs, record.get("inputs") or {})
    if parent_status in (BUILD,) and image.parent_name:
        parent_item = f"parent {image.parent_name} changed"
        changes = [c for c in changes if c != parent_item]
        changes.insert(0, f"parent {image.parent_name} rebuilds")
    if not changes:
        changes = ["stored image has a different key"]
    return PlanEntry(name, platform, BUILD, "; ".join(changes), unit)


def stored_status(recipe: Recipe, store: Store, unit: BuildUnit) -> tuple[str, str]:
    """What the store means for ``unit`` now: UP_TO_DATE, TEST or BUILD with a reason, or
    (BUILD, "") when only the recorded inputs can say what changed. ``lamina build`` asks
    again under the node lock, since another run may have built the node meanwhile."""
    verdict, why = check(store, unit, tests_hash(recipe.test_chain(unit.name)))
    if verdict == GOOD:
        return UP_TO_DATE, ""
    if verdict == UNTESTED:
        return TEST, why
    record = store.read_record(unit.name, unit.platform.arch)
    failure = record.get("last_failure") or {}
    if isinstance(failure, dict) and failure.get("key") == unit.key:
        return BUILD, f"last build failed: {failure.get('error', '?')}"
    if verdict == UNVERIFIED:
        return BUILD, why
    if store.get(unit.store_ref) is None or not record.get("inputs"):
        return BUILD, "not built yet"
    return BUILD, ""
