"""Make-like against a registry: what a target already holds for the same key is not rebuilt.

Every node lamina publishes is also tagged by its key (:func:`lamina.publish.cache_tag`) and,
once its tests passed, by its key and those tests (:func:`lamina.publish.tested_tag`), so
"is this node already built and tested by the tests the recipe has now?" is one manifest GET
per (image, platform) (plus at most one token request per repository), run in parallel. A
hit counts only when the manifest's own ``dev.lamina.key`` annotation equals the key: a tag
someone moved by hand is not trusted.
Nodes found there are fetched into the local store only when something needs their bytes
(a child to build on them, or a publish), by digest, so nothing is ever uploaded for them.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from lamina.errors import RegistryError
from lamina.noderecord import GOOD, check, node_record, tests_entry, tests_hash
from lamina.plan import BUILD, TEST, UP_TO_DATE, PlanEntry
from lamina.publish import tested_tag
from lamina.recipe import Recipe
from lamina.render import KEY_LABEL
from lamina.report_artifact import fetch_reports
from lamina.store import Store
from lamina.target import Target, client_for, pull


def check_against(recipe: Recipe, entries: list[PlanEntry], target: Target, jobs: int = 8
                  ) -> tuple[list[PlanEntry], int]:
    """Entries with what ``target`` already holds built and tested (by the current tests:
    :func:`lamina.publish.tested_tag`) marked up to date (reason: where), and the number of
    HTTP requests the check took."""
    client = client_for(target)
    checkable = [e for e in entries if e.unit is not None]
    chains = {name: tests_hash(recipe.test_chain(name)) for name in {e.image for e in checkable}}

    def tag_of(entry: PlanEntry) -> str:
        assert entry.unit is not None
        return tested_tag(entry.unit.key, chains[entry.image])

    def probe(entry: PlanEntry) -> bool:
        assert entry.unit is not None
        found = client.manifest(target.path(target.repository(entry.image)), tag_of(entry))
        return found is not None and found.annotations.get(KEY_LABEL) == entry.unit.key

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hits = dict(zip((id(e) for e in checkable), pool.map(probe, checkable), strict=True))
    out: list[PlanEntry] = []
    for entry in entries:
        if entry.unit is None or not hits.get(id(entry)):
            out.append(replace(entry, remote=None))
            continue
        where = f"{target.repository(entry.image)}:{tag_of(entry)}"
        if entry.status in (BUILD, TEST):
            out.append(replace(entry, status=UP_TO_DATE, reason=f"in registry ({where})",
                               remote=where))
        else:
            out.append(replace(entry, remote=where))
    return out, client.requests_made


def fetch_into_store(recipe: Recipe, store: Store, entry: PlanEntry, target: Target) -> None:
    """Copy a node the registry holds into the local store, digests preserved, and record it
    as tested: only images whose tests passed are ever pushed under a key tag.

    Stored the way a build is (:mod:`lamina.build`): pulled into a private staging layout,
    verified there, and promoted with its reports and record in one locked step, under the
    node's lock so that a concurrent run building the same node is waited for.
    """
    unit = entry.unit
    assert unit is not None and entry.remote is not None
    chain = tests_hash(recipe.test_chain(unit.name))

    def waiting(pid: int | None) -> None:
        sys.stderr.write(f"waiting for {unit.name} {unit.platform}: another lamina run "
                         f"(pid {pid or 'unknown'}) is building it\n")

    with store.node_lock(unit.name, unit.platform.arch, waiting):
        if check(store, unit, chain)[0] == GOOD:
            return  # another run stored it meanwhile
        with store.staging() as staging:
            pull(f"docker://{entry.remote}", staging.transport(unit.store_ref),
                 target.tls_verify, target.cert_dir, target.authfile,
                 what=f"fetch {entry.remote}")
            staged = staging.staged(unit.store_ref)
            if staged.image.annotations.get(KEY_LABEL) != unit.key:
                raise RegistryError(f"{entry.remote} does not carry key {unit.key[:19]}")
            reports = _fetch_reports(entry, target, staged.digest)
            record = {
                **node_record(unit, staged.image),
                "fetched_from": entry.remote, "fetched_at": int(time.time()),
                # the tag it came from exists only for these tests (publish.tested_tag)
                "tests": tests_entry(unit, staged.digest, chain, "passed", [],
                                     note="passed before it was pushed under its key tag"),
            }
            store.promote(staged, unit.name, unit.platform.arch, unit.store_ref, record,
                          reports)


def _fetch_reports(entry: PlanEntry, target: Target, digest: str) -> dict[str, bytes]:
    """The package manifest and SBOM attached to the key-tagged image (releases re-attach
    them; ``lamina diff`` reads them), by report name, found through the referrers API or
    the referrers tag schema as any OCI 1.1 client finds them."""
    assert entry.unit is not None
    return fetch_reports(client_for(target), target.path(target.repository(entry.image)),
                         digest, entry.unit.key)


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
