"""One node of a build run: build, export, check, test, and only then store and record.

The order is what makes "built" and "tested" true (see :mod:`lamina.build` for the whole
mechanism): nothing reaches the store until every check passed, and what reaches it is
named and recorded in one locked step (:meth:`lamina.store.Store.promote`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lamina import hygiene, manifests, rootfs
from lamina.builders.base import Builder, pip_cache, write_context
from lamina.errors import LaminaError, ToolError
from lamina.imagetest import TestResult, execute_tests, results_entry, run_tests
from lamina.locks import file_lock
from lamina.noderecord import node_record, tests_entry, tests_hash
from lamina.plan import TEST, UP_TO_DATE, PlanEntry, stored_status
from lamina.recipe import Recipe
from lamina.render import KEY_LABEL, BuildUnit
from lamina.scratch import owned_dir
from lamina.settings import Settings
from lamina.staging import StagedImage
from lamina.store import Store

BUILT = "built"
TESTED = "tested"
FAILED = "failed"
SKIPPED = "blocked"

Step = Callable[[str], None]


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
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase, see Phases
    warnings: list[str] = field(default_factory=list)  # built, but a consumer will differ

    @property
    def ok(self) -> bool:
        return self.outcome in (BUILT, TESTED, UP_TO_DATE, "excluded")


class Phases(dict[str, float]):
    """Seconds a node spent in each phase: ``plan`` (re-planning under the node lock),
    ``build`` (root filesystem and ``buildah bud``), ``store`` (export into staging and
    promotion), ``hygiene``, ``probe`` (the package probe, in the test container) and
    ``tests`` (the test container, less the probe). ``lamina build --json`` shows them."""

    @contextlib.contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self[phase] = round(self.get(phase, 0.0) + time.monotonic() - start, 2)


def log_path(settings: Settings, unit: BuildUnit) -> Path:
    return settings.logs / f"{unit.name}-{unit.platform.arch}.log"


def size_info(store: Store, unit: BuildUnit) -> tuple[list[tuple[str, int]], int]:
    record = store.read_record(unit.name, unit.platform.arch)
    layers = record.get("layers")
    sizes = [(str(layer.get("name")), int(layer.get("size", 0)))
             for layer in (layers if isinstance(layers, list) else []) if isinstance(layer, dict)]
    return sizes, int(record.get("size", 0) or 0)


def check_hygiene(staged: StagedImage, unit: BuildUnit) -> None:
    own = staged.image.layers[-len(unit.layers):] if unit.layers else []
    findings: list[hygiene.Finding] = []
    for rendered, desc in zip(unit.layers, own, strict=True):
        digest = str(desc["digest"])
        blob = staged.layout.blob_path(digest)
        if not blob.is_file():
            blob = staged.layout.store.blob_path(digest)  # the store holds it already
        findings += hygiene.scan_layer(blob, rendered.layer.name)
    if findings:
        shown = "; ".join(str(f) for f in findings[:3])
        more = f" and {len(findings) - 3} more" if len(findings) > 3 else ""
        raise ToolError(f"layer hygiene: {shown}{more} (clean up in the same layer)")


def ducc_warnings(staged: StagedImage, unit: BuildUnit) -> list[str]:
    """The node's own layers as unpacked.cern.ch will ingest them (hygiene.ducc_ingest_warnings)."""
    own = staged.image.layers[-len(unit.layers):] if unit.layers else []
    warnings: list[str] = []
    for rendered, desc in zip(unit.layers, own, strict=True):
        blob = staged.layout.blob_path(str(desc["digest"]))
        if not blob.is_file():
            blob = staged.layout.store.blob_path(str(desc["digest"]))
        warnings += hygiene.ducc_ingest_warnings(blob, rendered.layer.name)
    return warnings


class NodeWork:
    """What one run does for one node, holding that node's lock."""

    def __init__(self, recipe: Recipe, settings: Settings, store: Store, builder: Builder,
                 run_image_tests: bool) -> None:
        self.recipe = recipe
        self.settings = settings
        self.store = store
        self.builder = builder
        self.run_image_tests = run_image_tests

    def do(self, entry: PlanEntry, unit: BuildUnit, log: Path, step: Step) -> NodeResult:
        """Re-plan the node (another run may have built it meanwhile), then do what is left."""
        start = time.monotonic()
        warnings: list[str] = []
        phases = Phases()
        with phases.timing("plan"):
            status, _ = stored_status(self.recipe, self.store, unit)
        if status == UP_TO_DATE:
            sizes, size = size_info(self.store, unit)
            return NodeResult(entry, UP_TO_DATE, 0.0, "", None, [], sizes, size)
        if status == TEST:
            outcome = TESTED
            results = []
            if self.run_image_tests:
                step("testing")
                with phases.timing("tests"):
                    results = run_tests(self.recipe, unit, self.builder, self.store, log,
                                        self.settings.state / "work")
        else:
            outcome = BUILT
            results, warnings = self.build(unit, log, step, start, phases)
        sizes, size = size_info(self.store, unit)
        failed = [r for r in results if not r.passed]
        seconds = time.monotonic() - start
        if failed:
            names = ", ".join(f"{r.spec.name} (exit {r.exit_code})" for r in failed)
            return NodeResult(entry, FAILED, seconds, f"tests failed: {names}", log, results,
                              sizes, size, phases, warnings)
        return NodeResult(entry, outcome, seconds, "", log, results, sizes, size, phases,
                          warnings)

    def build(self, unit: BuildUnit, log: Path, step: Step, start: float, phases: Phases
              ) -> tuple[list[TestResult], list[str]]:
        label = f"{unit.name} {unit.platform}"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"lamina build of {label}\nkey {unit.key}\n")
        tars: dict[str, Path] = {}
        cache = self.settings.cache / "rootfs"
        arch = unit.platform.arch
        with phases.timing("build"):
            for request in unit.rootfs_requests:
                step(f"preparing root filesystem ({request.method})")
                # one preparation at a time, across threads and runs (they share the cache)
                with file_lock(cache.parent / "rootfs.lock").held():
                    tars[request.context_name] = rootfs.prepare(request, cache, unit.epoch,
                                                                log)
            with owned_dir(self.settings.state / "work", f"{unit.name}-{arch}-") as context:
                write_context(unit, context, tars, pip_cache(self.settings))
                step("building")
                self.builder.build(unit, context, self.settings, self.store, log, step)
        with self.store.staging() as staging:
            with phases.timing("store"):
                step("exporting")
                count = self.builder.export(unit, staging, log)
                with log.open("a") as handle:
                    handle.write(f"lamina: export of {unit.store_ref}: {count}\n")
                staged = staging.staged(unit.store_ref)
            if staged.image.annotations.get(KEY_LABEL) != unit.key:
                raise ToolError(f"the exported {unit.store_ref} does not carry its key")
            step("checking layer hygiene")
            with phases.timing("hygiene"):
                check_hygiene(staged, unit)
                warnings = ducc_warnings(staged, unit)
            step("testing" if self.run_image_tests else "collecting the package manifest")
            run = execute_tests(self.recipe, unit, self.builder, self.store, log,
                                self.settings.state / "work", probe=manifests.PROBE,
                                run_chain=self.run_image_tests)
            # the container is the tests' when they run, else all of it is the probe's
            probe = run.probe_seconds if self.run_image_tests else run.seconds
            phases["probe"] = round(probe, 2)
            phases["tests"] = round(run.seconds - probe, 2)
            packages = manifests.parse_probe(run.probe_output or "")
            reports = manifests.reports(manifests.build_manifest(unit, staged.image, packages))
            chain = tests_hash(self.recipe.test_chain(unit.name))
            tests = tests_entry(unit, staged.digest, chain, "not run", [])
            if self.run_image_tests:
                tests = results_entry(self.recipe, unit, staged.digest, run.results)
            record = {**node_record(unit, staged.image), "built_at": int(time.time()),
                      "build_seconds": round(time.monotonic() - start, 1), "log": str(log),
                      "tests": tests, "warnings": warnings}
            step("storing")
            with phases.timing("store"):
                self.store.promote(staged, unit.name, arch, unit.store_ref, record, reports)
        return run.results, warnings


def failure_message(exc: BaseException, step: str) -> str:
    """One line for what stopped a node: lamina's own message, or the step and the OS error
    (a full disk, a permission) for anything the operating system refused."""
    if isinstance(exc, LaminaError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{step}: {exc.strerror or exc}{where}"
    return f"{step}: {type(exc).__name__}: {exc}"
