"""Make-like against a registry: what a target already holds for the same key is not rebuilt.

Every node lamina publishes is also tagged by its key (:func:`lamina.publish.cache_tag`), so
"is this node already built?" is one manifest GET per (image, platform) (plus at most one
token request per repository), run in parallel. A hit counts only when the manifest's own
``dev.lamina.key`` annotation equals the key: a tag someone moved by hand is not trusted.
Nodes found there are fetched into the local store only when something needs their bytes
(a child to build on them, or a publish), by digest, so nothing is ever uploaded for them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from lamina.build import node_record
from lamina.errors import RegistryError
from lamina.plan import BUILD, TEST, UP_TO_DATE, PlanEntry, tests_hash
from lamina.publish import cache_tag, report_files
from lamina.recipe import Recipe
from lamina.render import KEY_LABEL
from lamina.store import Store
from lamina.target import Target, client_for, pull


def check_against(entries: list[PlanEntry], target: Target, jobs: int = 8
                  ) -> tuple[list[PlanEntry], int]:
    """Entries with what ``target`` already holds marked up to date (reason: where), and the
    number of HTTP requests the check took."""
    client = client_for(target)
    checkable = [e for e in entries if e.unit is not None]

    def probe(entry: PlanEntry) -> bool:
        assert entry.unit is not None
        found = client.manifest(target.path(target.repository(entry.image)),
                                cache_tag(entry.unit.key))
        return found is not None and found.annotations.get(KEY_LABEL) == entry.unit.key

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hits = dict(zip((id(e) for e in checkable), pool.map(probe, checkable), strict=True))
    out: list[PlanEntry] = []
    for entry in entries:
        if entry.unit is None or not hits.get(id(entry)):
            out.append(replace(entry, remote=None))
            continue
        where = f"{target.repository(entry.image)}:{cache_tag(entry.unit.key)}"
        if entry.status in (BUILD, TEST):
            out.append(replace(entry, status=UP_TO_DATE, reason=f"in registry ({where})",
                               remote=where))
        else:
            out.append(replace(entry, remote=where))
    return out, client.requests_made


def fetch_into_store(recipe: Recipe, store: Store, entry: PlanEntry, target: Target) -> None:
    """Copy a node the registry holds into the local store, digests preserved, and record it
    as tested: only images whose tests passed are ever pushed under a key tag."""
    unit = entry.unit
    assert unit is not None and entry.remote is not None
    with store.locked():
        pull(f"docker://{entry.remote}", store.transport(unit.store_ref), target.tls_verify,
             target.cert_dir, target.authfile, what=f"fetch {entry.remote}")
    stored = store.get(unit.store_ref)
    if stored is None or stored.annotations.get(KEY_LABEL) != unit.key:
        raise RegistryError(f"{entry.remote} does not carry key {unit.key[:19]}")
    _fetch_reports(store, entry, target, stored.manifest_digest)
    store.write_record(unit.name, unit.platform.arch, {
        **node_record(unit, stored),
        "fetched_from": entry.remote, "fetched_at": int(time.time()),
        "tests": {"status": "passed", "key": unit.key,
                  "hash": tests_hash(recipe.test_chain(unit.name)),
                  "note": "passed before it was pushed under its key tag"},
    })


def _fetch_reports(store: Store, entry: PlanEntry, target: Target, digest: str) -> None:
    """The package manifest and SBOM attached to the key-tagged image, written back beside
    it in the store (releases re-attach them; ``lamina diff`` reads them)."""
    client = client_for(target)
    repo = target.path(target.repository(entry.image))
    artifact = client.manifest(repo, digest.replace(":", "-"))
    if artifact is None:
        return
    wanted = {media_type: path for path, media_type in
              report_files(store, entry.image, entry.platform.arch)}
    for layer in artifact.body.get("layers") or []:
        path = wanted.get(str(layer.get("mediaType")))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(client.blob(repo, str(layer["digest"])))


def needed_locally(recipe: Recipe, entries: list[PlanEntry], publish: set[str]
                   ) -> list[PlanEntry]:
    """Registry-only nodes whose bytes are needed: parents of nodes to build, and images to
    publish (their release tags are made from the local store)."""
    store_missing = [e for e in entries if e.remote is not None and e.reason.startswith(
        "in registry")]
    building = {(recipe.images[e.image].parent_name, e.platform)
                for e in entries if e.status in (BUILD, TEST)}
    return [e for e in store_missing
            if (e.image, e.platform) in building or e.image in publish]
