"""Running an image's tests, and its ancestors', inside the built image.

Tests are inherited down the tree, so a broken framework shows up when the analysis image
is tested too. All of a node's tests run in one container of its image, import tests in one
interpreter (:mod:`lamina.testrunner`), and each is still reported on its own, with its exit
code, duration and the tail of its own output. Results are recorded with the image in the
store, bound to the node's key, its manifest digest and the hash of the test chain
(:mod:`lamina.noderecord`): publishing refuses a node whose recorded tests did not pass for
exactly that image and those tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.builders.base import Builder
from lamina.envseconds import positive_seconds
from lamina.errors import ToolError
from lamina.noderecord import tests_entry, tests_hash
from lamina.recipe import Recipe, TestSpec
from lamina.redact import redact
from lamina.render import BuildUnit
from lamina.store import Store
from lamina.testrunner import ItemResult, items_for, results_dir, run_items, tail

DEFAULT_TIMEOUT = 900.0  # seconds one test may run without finishing


def per_test_timeout() -> float:
    """Seconds one test may take: ``LAMINA_TEST_TIMEOUT``, default 900 (then it fails with
    exit 124 and the node's other tests still run)."""
    return positive_seconds("LAMINA_TEST_TIMEOUT", DEFAULT_TIMEOUT)


@dataclass(frozen=True)
class TestResult:
    spec: TestSpec
    passed: bool
    exit_code: int
    seconds: float
    output_tail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.spec.name, "origin": self.spec.origin, "passed": self.passed,
                "exit_code": self.exit_code, "seconds": round(self.seconds, 2),
                "output_tail": self.output_tail}


@dataclass
class TestRun:
    """What one container run of a node gave: each test's result, and the probe's output."""

    results: list[TestResult] = field(default_factory=list)
    probe_output: str | None = None
    probe_seconds: float = 0.0
    seconds: float = 0.0  # all of it, container included


def applicable(tests: list[TestSpec], unit: BuildUnit) -> list[TestSpec]:
    return [t for t in tests if not t.platforms or unit.platform.name in t.platforms]


def execute_tests(recipe: Recipe, unit: BuildUnit, builder: Builder, store: Store, log: Path,
                  work: Path, timeout: float | None = None, probe: str | None = None,
                  run_chain: bool = True) -> TestRun:
    """Run every test of ``unit``'s chain (unless not ``run_chain``), and the package
    ``probe`` when given, in one container of the node's image; record nothing."""
    start = time.monotonic()
    builder.ensure_local(unit, store, log)
    specs = applicable(recipe.test_chain(unit.name), unit) if run_chain else []
    items = items_for(specs, probe)
    with results_dir(work) as results, builder.test_container(unit, results) as container:
        done = run_items(container, items, results, log,
                         per_test_timeout() if timeout is None else timeout)
    run = TestRun()
    for item in items:
        result = done.get(item.index) or ItemResult(1, "lamina: the test did not run", 0.0)
        if item.spec is None:
            if result.exit_code != 0:
                raise ToolError(f"the package probe failed in {unit.store_ref} (exit "
                                f"{result.exit_code}): {redact(result.errors.strip()[-200:])}")
            run.probe_output, run.probe_seconds = result.output.strip(), result.seconds
            continue
        run.results.append(TestResult(item.spec, result.exit_code == 0, result.exit_code,
                                      result.seconds, tail(result.output)))
    run.seconds = time.monotonic() - start
    return run


def results_entry(recipe: Recipe, unit: BuildUnit, manifest_digest: str,
                  results: list[TestResult]) -> dict[str, Any]:
    """The record's ``tests``: bound to the key, the manifest digest and the test chain."""
    status = "passed" if all(r.passed for r in results) else "failed"
    return tests_entry(unit, manifest_digest, tests_hash(recipe.test_chain(unit.name)),
                       status, [r.as_json() for r in results])


def run_tests(recipe: Recipe, unit: BuildUnit, builder: Builder, store: Store, log: Path,
              work: Path, timeout: float | None = None) -> list[TestResult]:
    """Test the node as stored and record the results with it (``lamina test``, and nodes
    the plan says to test). Recorded only if the store still holds the verified image that
    was tested (another run may have replaced it meanwhile)."""
    stored = store.get(unit.store_ref)
    if stored is None:
        raise ToolError(f"{unit.store_ref} is not in the store; run lamina build")
    results = execute_tests(recipe, unit, builder, store, log, work, timeout).results
    entry = results_entry(recipe, unit, stored.manifest_digest, results)
    with store.locked():
        record = store.read_record(unit.name, unit.platform.arch)
        if record.get("key") != unit.key or record.get("verified") is not True or \
                record.get("manifest_digest") != stored.manifest_digest:
            raise ToolError(f"{unit.store_ref} changed or is not verified; its test results "
                            "were not recorded (run lamina build)")
        record["tests"] = entry
        store.write_record(unit.name, unit.platform.arch, record)
    return results
