"""Building what the plan says: parents first, independent nodes in parallel.

A failing node blocks only its own subtree (on the same platform); everything else goes
on, so one broken leaf does not cost a whole CI run. Every node's output goes to its own log
file, whose path the summary shows next to the error.

**When a node counts as built and tested.** The store ref ``<image>-<arch>`` and the record
``<store>/lamina/<image>/<arch>.json`` are what ``plan`` and ``publish`` trust, so neither is
touched until every check of the node passed (:class:`lamina.nodebuild.NodeWork`):

1. ``buildah bud`` builds into containers-storage, from a build context private to this run
   (``.lamina/work/<image>-<arch>-<unique>``, removed afterwards);
2. the backend exports the image into a staging layout private to this run
   (:mod:`lamina.staging`), where every new blob is verified against its digest;
3. layer hygiene, the package probe and (unless ``--no-test``) the image tests run on it,
   and the package manifest and SBOM are made;
4. :meth:`lamina.store.Store.promote` then, in one step under the store lock, links the
   blobs into the store, writes the reports, points the ref at the new manifest and writes
   the record last, with ``verified: true``, the manifest digest, each report's digest, and
   the test results bound to the key, the manifest digest and the hash of the test chain.

Every file is written through :mod:`lamina.atomic`. A run killed anywhere leaves either the
previous state or a record that does not match the ref; :func:`lamina.noderecord.check` (the
plan, a rerun, publish) counts a node as good only when ref, record, reports and tests all
agree for the current key, so a kill, a full disk or a record from an earlier key never
makes a node ``up-to-date`` or publishable. The same promotion stores nodes fetched from a
registry (:func:`lamina.against.fetch_into_store`); test results of a stored node are
recorded only against the record they were run for (:func:`lamina.imagetest.run_tests`).

**Concurrent runs.** Each node is built, tested or fetched under a per-node lock (a
``flock`` beside the store, released by the kernel if its holder dies). A run that finds a
node locked prints ``waiting for <node>: another lamina run (pid N) is building it``, waits,
and then plans that node again, so it usually finds it up to date.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from lamina.builders.base import Builder, build_timeout
from lamina.errors import LaminaError
from lamina.imagetest import per_test_timeout
from lamina.nodebuild import (
    BUILT,
    FAILED,
    SKIPPED,
    TESTED,
    NodeResult,
    NodeWork,
    failure_message,
    log_path,
    size_info,
)
from lamina.plan import BUILD, TEST, UP_TO_DATE, PlanEntry
from lamina.progress import Progress
from lamina.recipe import Recipe
from lamina.redact import redact
from lamina.settings import Settings
from lamina.store import Store

__all__ = ["BUILT", "FAILED", "SKIPPED", "TESTED", "BuildRun", "NodeResult", "log_path"]


class BuildRun:
    """One ``lamina build`` invocation over a plan."""

    def __init__(self, recipe: Recipe, settings: Settings, store: Store, builder: Builder,
                 progress: Progress, run_image_tests: bool = True) -> None:
        self.recipe = recipe
        self.settings = settings
        self.store = store
        self.builder = builder
        self.progress = progress
        build_timeout()  # a bad LAMINA_BUILD_TIMEOUT is a usage error before anything runs
        per_test_timeout()  # and so is a bad LAMINA_TEST_TIMEOUT
        self.work = NodeWork(recipe, settings, store, builder, run_image_tests)

    def _do_node(self, entry: PlanEntry) -> NodeResult:
        unit = entry.unit
        assert unit is not None
        log = log_path(self.settings, unit)
        label = f"{unit.name} {unit.platform}"
        start = time.monotonic()
        current = ["waiting for the node lock"]

        def step(text: str) -> None:
            current[0] = text
            self.progress.step(label, text)

        def waiting(pid: int | None) -> None:
            holder = f"pid {pid}" if pid else "pid unknown"
            self.progress.note(f"waiting for {label}: another lamina run ({holder}) is "
                               "building it")

        try:
            with self.store.node_lock(unit.name, unit.platform.arch, waiting):
                return self.work.do(entry, unit, log, step)
        except (LaminaError, OSError) as exc:
            message = redact(failure_message(exc, current[0]))
            self._record_failure(entry, message, log)
            return NodeResult(entry, FAILED, time.monotonic() - start, message, log)

    def _record_failure(self, entry: PlanEntry, message: str, log: object) -> None:
        unit = entry.unit
        if unit is None:
            return
        # a full disk refuses this too; the plan still says build, since nothing was verified
        with contextlib.suppress(LaminaError, OSError):
            self.store.update_record(unit.name, unit.platform.arch,
                                     last_failure={"key": unit.key, "error": message[:300],
                                                   "log": str(log), "at": int(time.time())})

    def run(self, entries: list[PlanEntry]) -> list[NodeResult]:
        results: dict[int, NodeResult] = {}
        pending = {i: e for i, e in enumerate(entries)}
        index_of = {(e.image, e.platform): i for i, e in enumerate(entries)}
        # Nodes with nothing to do settle at once; the rest wait for their parent.
        for i, entry in list(pending.items()):
            if entry.status not in (BUILD, TEST):
                outcome = UP_TO_DATE if entry.status == UP_TO_DATE else entry.status
                if entry.status == UP_TO_DATE and entry.unit is not None:
                    sizes, size = size_info(self.store, entry.unit)
                    results[i] = NodeResult(entry, outcome, layer_sizes=sizes, size=size)
                else:
                    results[i] = NodeResult(entry, outcome, error=entry.reason)
                del pending[i]
        todo = len(pending)
        self.progress.start(todo)
        running: dict[Future[NodeResult], int] = {}

        def parent_state(entry: PlanEntry) -> str:
            parent = self.recipe.images[entry.image].parent_name
            if parent is None:
                return "ready"
            j = index_of.get((parent, entry.platform))
            if j is None:
                return "ready"
            if j in results:
                return "ready" if results[j].ok else "failed"
            return "waiting"

        with ThreadPoolExecutor(max_workers=self.settings.jobs) as pool:
            while pending or running:
                for i, entry in sorted(pending.items()):
                    state = parent_state(entry)
                    if state == "failed":
                        parent = self.recipe.images[entry.image].parent_name
                        results[i] = NodeResult(entry, SKIPPED,
                                                error=f"parent {parent} failed on "
                                                      f"{entry.platform}")
                        self.progress.done(f"{entry.image} {entry.platform}", SKIPPED)
                        del pending[i]
                    elif state == "ready" and len(running) < self.settings.jobs:
                        self.progress.begin(f"{entry.image} {entry.platform}")
                        running[pool.submit(self._do_node, entry)] = i
                        del pending[i]
                if not running:
                    # Nothing can start: whatever is left waits on a node that will not come.
                    for i, entry in sorted(pending.items()):
                        results[i] = NodeResult(entry, SKIPPED, error="parent not built")
                    pending.clear()
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    i = running.pop(future)
                    result = future.result()
                    results[i] = result
                    self.progress.done(f"{result.entry.image} {result.entry.platform}",
                                       result.outcome, result.seconds, result.error)
        self.progress.stop()
        return [results[i] for i in range(len(entries))]
