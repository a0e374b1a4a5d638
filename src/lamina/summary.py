"""The readable table that ends a build or test run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lamina.build import NodeResult
from lamina.progress import OUTCOME_STYLE
from lamina.sizes import human_size


def layer_column(result: NodeResult) -> str:
    """Own layers with sizes, top layer last, so "only the top layer changed" is visible."""
    if not result.layer_sizes:
        return ""
    parts = [f"{name} {human_size(size)}" for name, size in result.layer_sizes]
    if result.size:
        parts[-1] += f" ({top_layer_share(result):.1%} of image)"
    return ", ".join(parts)


def top_layer_share(result: NodeResult) -> float:
    """The top layer's share of the image's compressed size: what a change there costs."""
    if not result.layer_sizes or not result.size:
        return 0.0
    return result.layer_sizes[-1][1] / result.size


def build_table(results: list[NodeResult], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("image", "platform", "result", "time", "size", "own layers", "tests",
                   "note"):
        table.add_column(column, overflow="fold")
    for result in results:
        entry = result.entry
        style = OUTCOME_STYLE.get(result.outcome, "")
        tests = ""
        if result.tests:
            passed = sum(1 for t in result.tests if t.passed)
            tests = f"{passed}/{len(result.tests)}"
        note = result.error[:120]
        table.add_row(entry.image, entry.platform.name, f"[{style}]{result.outcome}[/]",
                      f"{result.seconds:.0f}s" if result.seconds else "",
                      human_size(result.size) if result.size else "", layer_column(result),
                      tests, note)
    return table


def print_summary(results: list[NodeResult], title: str, console: Console) -> None:
    console.print(build_table(results, title))
    failed = [r for r in results if r.outcome == "failed"]
    for result in failed:
        # One unwrapped line per failure, so it can be copied and grepped from CI logs.
        log = f" (log: {result.log})" if result.log and str(result.log) not in result.error else ""
        console.print(f"FAILED {result.entry.image} {result.entry.platform}: {result.error}{log}",
                      soft_wrap=True, markup=False)
        for test in result.tests:
            if not test.passed:
                # each failing test on its own, with the tail of its own output
                console.print(f"  test {test.spec.name!r} ({test.spec.origin}): exit "
                              f"{test.exit_code}: {test.output_tail or '(no output)'}",
                              soft_wrap=True, markup=False)
    for result in results:
        for warning in result.warnings:  # built all the same; one line each, like failures
            console.print(f"WARNING {result.entry.image} {result.entry.platform}: {warning}",
                          soft_wrap=True, markup=False)
    blocked = [r for r in results if r.outcome == "blocked"]
    built = [r for r in results if r.outcome in ("built", "tested")]
    console.print(f"{len(built)} built or tested, {len(failed)} failed, {len(blocked)} blocked, "
                  f"{len(results) - len(built) - len(failed) - len(blocked)} unchanged or "
                  "excluded")
