"""Running an image's tests, and its ancestors', inside the built image.

Tests are inherited down the tree, so a broken framework shows up when the analysis image
is tested too. Results are recorded with the image in the store: publishing refuses a
node whose recorded tests did not pass for its current key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.builders.base import Builder
from lamina.plan import tests_hash
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


def run_tests(recipe: Recipe, unit: BuildUnit, builder: Builder, store: Store, log: Path,
              timeout: float = DEFAULT_TIMEOUT) -> list[TestResult]:
    """Run and record every test of ``unit``'s chain; return the results in order."""
    chain = recipe.test_chain(unit.name)
    builder.ensure_local(unit, store, log)
    results: list[TestResult] = []
    for spec in applicable(chain, unit):
        outcome = builder.run_test(unit, spec.run, spec.user, log, timeout)
        results.append(TestResult(spec, outcome.passed, outcome.exit_code, outcome.seconds,
                                  "" if outcome.passed else outcome.output_tail))
    status = "passed" if all(r.passed for r in results) else "failed"
    store.update_record(unit.name, unit.platform.arch, tests={
        "status": status,
        "key": unit.key,
        "hash": tests_hash(chain),
        "ran_at": int(time.time()),
        "results": [r.as_json() for r in results],
    })
    return results
