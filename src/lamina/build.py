"""Building what the plan says: parents first, independent nodes in parallel.

A failing node blocks only its own subtree (on the same platform); everything else goes
on, so one broken leaf does not cost a whole CI run. Every node's output goes to its own log
file, whose path the summary shows next to the error.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina import hygiene, manifests, rootfs
from lamina.builders.base import Builder, write_context
from lamina.errors import LaminaError
from lamina.imagetest import TestResult, run_tests
from lamina.plan import BUILD, TEST, UP_TO_DATE, PlanEntry
from lamina.progress import Progress
from lamina.recipe import Recipe
from lamina.redact import redact
from lamina.render import BuildUnit
from lamina.settings import Settings
from lamina.store import Store, StoredImage

BUILT = "built"
TESTED = "tested"
FAILED = "failed"
SKIPPED = "blocked"


@dataclass
class NodeResult:
    entry: PlanEntry
    outcome: str  # built | tested | up-to-date | failed | blocked | excluded
    seconds: float = 0.0
    error: str = ""
    log: Path | None = None
    tests: list[TestResult] = field(default_factory=list)
    layer_sizes: list[tuple[str, int]] = field(default_factory=list)
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in (BUILT, TESTED, UP_TO_DATE, "excluded")


def log_path(settings: Settings, unit: BuildUnit) -> Path:
    return settings.logs / f"{unit.name}-{unit.platform.arch}.log"


def node_record(unit: BuildUnit, stored: StoredImage) -> dict[str, Any]:
    """What the store records about a node, however it got there (built or fetched): its
    key and named inputs (how the plan says what changed), digests, and own layer sizes."""
    own = stored.layers[-len(unit.layers):] if unit.layers else []
    return {
        "image": unit.name,
        "platform": unit.platform.name,
        "key": unit.key,
        "inputs": unit.inputs,
        "manifest_digest": stored.manifest_digest,
        "config_digest": stored.config_digest,
        "size": sum(int(layer["size"]) for layer in stored.layers),
        "layers": [
            {"name": r.layer.name, "kind": r.layer.kind, "digest": d["digest"],
             "size": int(d["size"])}
            for r, d in zip(unit.layers, own, strict=True)
        ],
    }


def _record_build(store: Store, unit: BuildUnit, log: Path, seconds: float) -> None:
    stored = store.get(unit.store_ref)
    if stored is None:
        raise LaminaError(f"{unit.store_ref} missing from the store after export")
    record = store.read_record(unit.name, unit.platform.arch)
    record.update({
        **node_record(unit, stored),
        "built_at": int(time.time()),
        "build_seconds": round(seconds, 1),
        "log": str(log),
        "tests": {"status": "not run", "key": unit.key},
    })
    record.pop("last_failure", None)
    store.write_record(unit.name, unit.platform.arch, record)


def _check_hygiene(store: Store, unit: BuildUnit) -> None:
    stored = store.get(unit.store_ref)
    assert stored is not None
    own = stored.layers[-len(unit.layers):] if unit.layers else []
    findings: list[hygiene.Finding] = []
    for rendered, desc in zip(unit.layers, own, strict=True):
        findings += hygiene.scan_layer(store.blob_path(desc["digest"]), rendered.layer.name)
    if findings:
        shown = "; ".join(str(f) for f in findings[:3])
        more = f" and {len(findings) - 3} more" if len(findings) > 3 else ""
        raise LaminaError(f"layer hygiene: {shown}{more} (clean up in the same layer)")


def _size_info(store: Store, unit: BuildUnit) -> tuple[list[tuple[str, int]], int]:
    record = store.read_record(unit.name, unit.platform.arch)
    sizes = [(str(layer["name"]), int(layer["size"])) for layer in record.get("layers", [])]
    return sizes, int(record.get("size", 0))


class BuildRun:
    """One ``lamina build`` invocation over a plan."""

    def __init__(self, recipe: Recipe, settings: Settings, store: Store, builder: Builder,
                 progress: Progress, run_image_tests: bool = True) -> None:
        self.recipe = recipe
        self.settings = settings
        self.store = store
        self.builder = builder
        self.progress = progress
        self.run_image_tests = run_image_tests
        self._rootfs_lock = threading.Lock()

    def _do_node(self, entry: PlanEntry) -> NodeResult:
        unit = entry.unit
        assert unit is not None
        log = log_path(self.settings, unit)
        label = f"{unit.name} {unit.platform}"
        start = time.monotonic()
        try:
            if entry.status == BUILD:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text(f"lamina build of {label}\nkey {unit.key}\n")
                tars: dict[str, Path] = {}
                for request in unit.rootfs_requests:
                    self.progress.step(label, f"preparing root filesystem ({request.method})")
                    with self._rootfs_lock:
                        tars[request.context_name] = rootfs.prepare(
                            request, self.settings.cache / "rootfs", unit.epoch, log)
                context = self.settings.state / "work" / f"{unit.name}-{unit.platform.arch}"
                write_context(unit, context, tars)
                self.progress.step(label, "building")
                self.builder.build(unit, context, self.settings, self.store, log,
                                   lambda text: self.progress.step(label, text))
                self.progress.step(label, "storing")
                self.builder.export(unit, self.store, log)
                _record_build(self.store, unit, log, time.monotonic() - start)
                self.progress.step(label, "checking layer hygiene")
                _check_hygiene(self.store, unit)
                self.progress.step(label, "collecting the package manifest")
                packages = manifests.parse_probe(self.builder.output_of(unit, manifests.PROBE))
                manifests.save(self.store, manifests.build_manifest(unit, self.store, packages))
            outcome = BUILT if entry.status == BUILD else TESTED
            results: list[TestResult] = []
            if self.run_image_tests:
                self.progress.step(label, "testing")
                results = run_tests(self.recipe, unit, self.builder, self.store, log)
                failed = [r for r in results if not r.passed]
                if failed:
                    names = ", ".join(f"{r.spec.name} (exit {r.exit_code})" for r in failed)
                    sizes, size = _size_info(self.store, unit)
                    return NodeResult(entry, FAILED, time.monotonic() - start,
                                      f"tests failed: {names}", log, results, sizes, size)
            sizes, size = _size_info(self.store, unit)
            return NodeResult(entry, outcome, time.monotonic() - start, "", log, results,
                              sizes, size)
        except LaminaError as exc:
            message = redact(str(exc))
            if entry.status == BUILD:
                self.store.update_record(unit.name, unit.platform.arch,
                                         last_failure={"key": unit.key, "error": message[:300],
                                                       "log": str(log), "at": int(time.time())})
            return NodeResult(entry, FAILED, time.monotonic() - start, message, log)

    def run(self, entries: list[PlanEntry]) -> list[NodeResult]:
        results: dict[int, NodeResult] = {}
        pending = {i: e for i, e in enumerate(entries)}
        index_of = {(e.image, e.platform): i for i, e in enumerate(entries)}
        # Nodes with nothing to do settle at once; the rest wait for their parent.
        for i, entry in list(pending.items()):
            if entry.status not in (BUILD, TEST):
                outcome = UP_TO_DATE if entry.status == UP_TO_DATE else entry.status
                if entry.status == UP_TO_DATE and entry.unit is not None:
                    sizes, size = _size_info(self.store, entry.unit)
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
