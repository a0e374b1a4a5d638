"""The GitLab child pipeline, derived from the same graph as everything else.

One build job per (image, platform) whose ``needs:`` follow the tree on that platform, a
test job per node, one publish job per image after all its platforms. Nodes the plan finds
up to date are left out, so a tag that changed nothing finishes in seconds. Registry
credentials come from GitLab's CI variables at run time; nothing secret is written here.

Jobs hand the local store to their children as an artifact (``.lamina/store``): simple and
registry-free, fine for trees of moderate size; very large trees should pass images through
the registry instead (not implemented yet).
"""

from __future__ import annotations

from typing import Any

from lamina.plan import BUILD, EXCLUDED, TEST, PlanEntry
from lamina.recipe import Recipe

STORE = ".lamina/store"
SETUP = "scripts/setup"
LAMINA = ".venv/bin/lamina"


def _job_id(kind: str, image: str, arch: str | None = None) -> str:
    return f"{kind}:{image}" + (f":{arch}" if arch else "")


def child_pipeline(recipe: Recipe, entries: list[PlanEntry],
                   runner_tags: dict[str, list[str]] | None = None,
                   target: str = "$LAMINA_TARGET") -> dict[str, Any]:
    cfg: dict[str, Any] = recipe.settings.get("ci") or {}
    tags_by_arch: dict[str, list[str]] = dict(cfg.get("runner_tags") or {})
    tags_by_arch.update(runner_tags or {})
    todo = {(e.image, e.platform.arch) for e in entries if e.status in (BUILD, TEST)}
    pipeline: dict[str, Any] = {
        "stages": ["build", "test", "publish"],
        "variables": {"LAMINA_STORE": STORE, "GIT_DEPTH": "0"},
    }
    jobs = 0
    for entry in entries:
        arch = entry.platform.arch
        if (entry.image, arch) not in todo:
            continue
        parent = recipe.images[entry.image].parent_name
        needs: list[dict[str, Any]] = []
        if parent is not None and (parent, arch) in todo:
            needs.append({"job": _job_id("build", parent, arch), "artifacts": True})
        build: dict[str, Any] = {
            "stage": "build",
            "needs": needs,
            "script": [SETUP, f"{LAMINA} build {entry.image} --platform {entry.platform} "
                              "--no-test"],
            "artifacts": {"paths": [STORE, ".lamina/logs"], "when": "always",
                          "expire_in": "1 week"},
        }
        test: dict[str, Any] = {
            "stage": "test",
            "needs": [{"job": _job_id("build", entry.image, arch), "artifacts": True}],
            "script": [SETUP, f"{LAMINA} test {entry.image} --platform {entry.platform}"],
            "artifacts": {"paths": [STORE], "when": "always", "expire_in": "1 week"},
        }
        if arch in tags_by_arch:
            build["tags"] = list(tags_by_arch[arch])
            test["tags"] = list(tags_by_arch[arch])
        pipeline[_job_id("build", entry.image, arch)] = build
        pipeline[_job_id("test", entry.image, arch)] = test
        jobs += 2
    for name in recipe.order:
        image = recipe.images[name]
        if not image.publish:
            continue
        mine = [e for e in entries if e.image == name and e.status != EXCLUDED]
        if not any((name, e.platform.arch) in todo for e in mine):
            continue
        pipeline[_job_id("publish", name)] = {
            "stage": "publish",
            "needs": [{"job": _job_id("test", name, e.platform.arch), "artifacts": True}
                      for e in mine if (name, e.platform.arch) in todo],
            "rules": [{"if": "$CI_COMMIT_TAG"}],
            "script": [SETUP, f"{LAMINA} publish {name} --to {target}"],
        }
        jobs += 1
    if jobs == 0:
        # GitLab rejects an empty pipeline; one no-op job says why nothing runs.
        pipeline["nothing-to-do"] = {
            "stage": "build",
            "script": ["echo 'lamina: every image is up to date; nothing to build'"],
        }
    return pipeline
