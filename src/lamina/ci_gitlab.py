"""The GitLab child pipeline, derived from the same graph as everything else.

One build job per (image, platform) whose ``needs:`` follow the tree on that platform, a
test job per node, one publish job per image after all its platforms and after its parent's
publish job (so the child's manifests name the base as published). Nodes the plan finds up
to date are left out, so a tag that changed nothing finishes in seconds. Registry
credentials come from GitLab's CI variables at run time; nothing secret is written here (a
literal ``--target`` is checked as a publish target is, so ``user:pass@host/ns`` is refused).

How the local store travels between jobs depends on where it is, decided when the pipeline
is generated (``--store`` / ``LAMINA_STORE`` of the generating job):

* **Inside the checkout** (the default ``.lamina/store``): every job starts from a fresh
  checkout, so the store is handed along ``needs:`` as an artifact. Each job receives only
  what its needs export (a build job its parent's build, a test job its build, a publish
  job its tests and its parent's publication record). Works on any runner and executor,
  but the whole store is uploaded per job, so it suits trees of moderate size (GitLab's
  artifact size limit applies). The generating job's store is empty in a fresh checkout,
  so this mode rebuilds the whole tree; a build job whose parent was left out builds the
  parent itself (``lamina build`` builds missing ancestors).
* **Outside the checkout** (an absolute path, e.g. ``LAMINA_STORE=/var/lib/lamina/store``
  set as a CI/CD variable on shell runners): every job reads and writes that one store
  (writers of its index are serialised by a file lock), nothing is uploaded, and up-to-date
  nodes are really skipped. All jobs must then run on runners that see the same path: one
  machine building foreign platforms through qemu binfmt, or a shared filesystem; use
  ``runner_tags`` to pin them.

The jobs call ``$LAMINA`` (a pipeline variable, ``lamina`` unless ``--lamina`` says
otherwise; a CI/CD variable of the same name overrides it per project or runner), after an
optional setup command (``--setup``, e.g. ``scripts/setup`` in lamina's own repository).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lamina.plan import BUILD, EXCLUDED, TEST, PlanEntry
from lamina.recipe import Recipe
from lamina.target import Target

DEFAULT_LAMINA = "lamina"
_CI_VARIABLE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[A-Za-z_][A-Za-z0-9_]*\})")


def _job_id(kind: str, image: str, arch: str | None = None) -> str:
    return f"{kind}:{image}" + (f":{arch}" if arch else "")


def checkout_root(project: Path) -> Path:
    """The git work tree holding ``project`` (GitLab's ``$CI_PROJECT_DIR``), or ``project``."""
    for candidate in (project, *project.parents):
        if (candidate / ".git").exists():
            return candidate
    return project


def _inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` as a POSIX string, or None when it lies outside."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def child_pipeline(recipe: Recipe, entries: list[PlanEntry],
                   runner_tags: dict[str, list[str]] | None = None,
                   target: str = "$LAMINA_TARGET", *, store: Path | None = None,
                   state: Path | None = None, lamina: str = DEFAULT_LAMINA,
                   setup: str | None = None) -> dict[str, Any]:
    """The child pipeline as a dict ready to dump as YAML.

    ``store``/``state`` are the resolved settings of the generating job (default: the
    project's ``.lamina/store`` and ``.lamina``); they decide how the store travels.
    """
    if not _CI_VARIABLE.fullmatch(target):
        Target.parse(target)  # a literal target: no credentials, a REGISTRY/NAMESPACE
    cfg: dict[str, Any] = recipe.settings.get("ci") or {}
    tags_by_arch: dict[str, list[str]] = dict(cfg.get("runner_tags") or {})
    tags_by_arch.update(runner_tags or {})
    todo = {(e.image, e.platform.arch) for e in entries if e.status in (BUILD, TEST)}

    project = recipe.root
    checkout = checkout_root(project)
    store = store if store is not None else project / ".lamina" / "store"
    state = state if state is not None else project / ".lamina"
    store_in_checkout = _inside(store, checkout)
    logs_in_checkout = _inside(state / "logs", checkout)
    # A relative store is resolved against the project by lamina; keep it relative so the
    # pipeline works in whatever directory the runner checks the project out.
    store_var = _inside(store, project) if store_in_checkout is not None else None
    variables: dict[str, str] = {
        "LAMINA": lamina,
        "LAMINA_STORE": store_var if store_var is not None else str(store),
        "GIT_DEPTH": "0",
    }
    project_rel = _inside(project, checkout)
    if project_rel not in (None, "."):
        variables["LAMINA_PROJECT"] = str(project_rel)
    hand_over = store_in_checkout is not None  # artifacts mode

    def script(command: str) -> list[str]:
        return ([setup] if setup else []) + [f"$LAMINA {command}"]

    def artifacts(paths: list[str | None]) -> dict[str, Any] | None:
        kept = [p for p in paths if p is not None]
        if not kept:
            return None
        return {"paths": kept, "when": "always", "expire_in": "1 week"}

    def need(job: str) -> dict[str, Any]:
        return {"job": job, "artifacts": hand_over}

    pipeline: dict[str, Any] = {"stages": ["build", "test", "publish"], "variables": variables}
    jobs = 0
    for entry in entries:
        arch = entry.platform.arch
        if (entry.image, arch) not in todo:
            continue
        parent = recipe.images[entry.image].parent_name
        needs: list[dict[str, Any]] = []
        if parent is not None and (parent, arch) in todo:
            needs.append(need(_job_id("build", parent, arch)))
        build: dict[str, Any] = {
            "stage": "build",
            "needs": needs,
            "script": script(f"build {entry.image} --platform {entry.platform} --no-test"),
        }
        test: dict[str, Any] = {
            "stage": "test",
            "needs": [need(_job_id("build", entry.image, arch))],
            "script": script(f"test {entry.image} --platform {entry.platform}"),
        }
        for job, paths in ((build, [store_in_checkout, logs_in_checkout]),
                           (test, [store_in_checkout])):
            exported = artifacts(paths)
            if exported is not None:
                job["artifacts"] = exported
            if arch in tags_by_arch:
                job["tags"] = list(tags_by_arch[arch])
        pipeline[_job_id("build", entry.image, arch)] = build
        pipeline[_job_id("test", entry.image, arch)] = test
        jobs += 2
    published: set[str] = set()
    for name in recipe.order:
        image = recipe.images[name]
        if not image.publish:
            continue
        mine = [e for e in entries if e.image == name and e.status != EXCLUDED]
        if not any((name, e.platform.arch) in todo for e in mine):
            continue
        needs = [need(_job_id("test", name, e.platform.arch))
                 for e in mine if (name, e.platform.arch) in todo]
        if image.parent_name in published:
            # The parent's publication record gives this image's manifests their base.*.
            needs.append(need(_job_id("publish", image.parent_name)))
        job = {
            "stage": "publish",
            "needs": needs,
            "rules": [{"if": "$CI_COMMIT_TAG"}],
            "script": script(f"publish {name} --to {target}"),
        }
        if store_in_checkout is not None:
            job["artifacts"] = {"paths": [f"{store_in_checkout}/lamina/{name}/published.json"],
                                "expire_in": "1 week"}
        pipeline[_job_id("publish", name)] = job
        published.add(name)
        jobs += 1
    if published:
        # After the releases: the CVMFS wishlist merge request (only with a token that may
        # open one) and the JupyterHub values pinned to what was just published.
        publish_needs = [need(_job_id("publish", name)) for name in sorted(published)]
        pipeline["stages"] = ["build", "test", "publish", "release"]
        pipeline["cvmfs-mr"] = {
            "stage": "release",
            "needs": publish_needs,
            "rules": [{"if": "$CI_COMMIT_TAG && $LAMINA_GITLAB_TOKEN"}],
            "script": script("cvmfs mr " + " ".join(sorted(published))),
        }
        hub_images = sorted(n for n in published if recipe.images[n].extra.get("jupyterhub"))
        if hub_images:
            pipeline["jupyterhub-values"] = {
                "stage": "release",
                "needs": [need(_job_id("publish", n)) for n in hub_images],
                "rules": [{"if": "$CI_COMMIT_TAG"}],
                "script": [*([setup] if setup else []),
                           "$LAMINA jupyterhub > jupyterhub-values.yaml"],
                "artifacts": {"paths": ["jupyterhub-values.yaml"], "expire_in": "1 year"},
            }
    if jobs == 0:
        # GitLab rejects an empty pipeline; one no-op job says why nothing runs.
        pipeline["nothing-to-do"] = {
            "stage": "build",
            "script": ["echo 'lamina: every image is up to date; nothing to build'"],
        }
    return pipeline
