"""Running an image's tests, and its ancestors', inside the built image.

Tests are inherited down the tree, so a broken framework shows up when the analysis image
is tested too. Results are recorded with the image in the store, bound to the node's key,
its manifest digest and the hash of the test chain (:mod:`lamina.noderecord`): publishing
refuses a node whose recorded tests did not pass for exactly that image and those tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.builders.base import Builder
from lamina.errors import ToolError
from lamina.noderecord import tests_entry, tests_hash
from lamina.recipe import Recipe, TestSpec
from lamina.render import BuildUnit
from lamina.store import Store

DEFAULT_TIMEOUT = 900.0


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


def applicable(tests: list[TestSpec], unit: BuildUnit) -> list[TestSpec]:
    return [t for t in tests if not t.platforms or unit.platform.name in t.platforms]


def execute_tests(recipe: Recipe, unit: BuildUnit, builder: Builder, store: Store, log: Path,
                  timeout: float = DEFAULT_TIMEOUT) -> list[TestResult]:
    """Run every test of ``unit``'s chain in the node's image; record nothing."""
    builder.ensure_local(unit, store, log)
    results: list[TestResult] = []
    for spec in applicable(recipe.test_chain(unit.name), unit):
        outcome = builder.run_test(unit, spec.run, spec.user, log, timeout)
        results.append(TestResult(spec, outcome.passed, outcome.exit_code, outcome.seconds,
                                  "" if outcome.passed else outcome.output_tail))
    return results


def results_entry(recipe: Recipe, unit: BuildUnit, manifest_digest: str,
                  results: list[TestResult]) -> dict[str, Any]:
    """The record's ``tests``: bound to the key, the manifest digest and the test chain."""
    status = "passed" if all(r.passed for r in results) else "failed"
    return tests_entry(unit, manifest_digest, tests_hash(recipe.test_chain(unit.name)),
                       status, [r.as_json() for r in results])


def run_tests(recipe: Recipe, unit: BuildUnit, builder: Builder, store: Store, log: Path,
              timeout: float = DEFAULT_TIMEOUT) -> list[TestResult]:
    """Test the node as stored and record the results with it (``lamina test``, and nodes
    the plan says to test). Recorded only if the store still holds the verified image that
    was tested (another run may have replaced it meanwhile)."""
    stored = store.get(unit.store_ref)
    if stored is None:
        raise ToolError(f"{unit.store_ref} is not in the store; run lamina build")
    results = execute_tests(recipe, unit, builder, store, log, timeout)
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
