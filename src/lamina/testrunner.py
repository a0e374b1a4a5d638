"""Running a node's tests in one container: one shell runner, import tests in one interpreter.

A HEP image's test chain is some thirty tests, most of them automatic import tests
(:mod:`lamina.autotests`). Started one container and one Python process each, they cost
half a second of container set-up plus the import of numpy or coffea every time. So a
node's tests share one container (the backend's :class:`TestContainer`), and run in it from
one small POSIX shell runner (:data:`RUNNER`) per stretch of tests that run as the same
user; consecutive import tests with the same interpreter run in one Python process
(:data:`IMPORTER`), which imports each module in turn.

Each test is still reported on its own: the runner gives every test its own output file,
exit code file and start marker in a directory bind-mounted from the host
(:data:`RESULTS_MOUNT`), so a test's output is its own and its duration comes from the two
files' modification times. A failing test never hides the others: every test runs, in the
chain's order. When a test outlives its timeout, or a module's import kills its interpreter,
that test gets its exit code (124 for a timeout, as ``timeout(1)``) and a new runner starts in
the same container with the tests that had not started.

Each test's shell line runs as ``/bin/sh -c LINE`` with the container's working directory and
environment, as before; an import test runs ``importlib.import_module`` with what ``python
-c 'import M'`` would report: exit 0, or 1 and the traceback (a ``SystemExit`` keeps its code).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.recipe import TestSpec
from lamina.redact import redact

RESULTS_MOUNT = "/run/lamina-tests"
GATE = "gate"  # a FIFO in the results directory
TIMED_OUT = 124
POLL_SECONDS = 0.1
GATE_SECONDS = 10.0  # for a runner let go, or killed, to end
MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

# $1 is the importer program, then groups: "sh I LINE", "probe I LINE" (stdout and stderr
# apart), "py I PYTHON I:M,J:N,..." (test I imports module M, test J module N, ...). The runner says
# who it is (its pid) when it starts and when it is done, then waits on the gate until the
# host ends it with everything its tests left running.
RUNNER = f"""d={RESULTS_MOUNT}; imp=$1; shift
exec > "$d/runner.$$.log" 2>&1 < /dev/null
: > "$d/runner.$$"
while [ $# -gt 0 ]; do
  case $1 in
  sh) : > "$d/$2.start"; /bin/sh -c "$3" > "$d/$2.out" 2>&1; echo $? > "$d/$2.rc"; shift 3 ;;
  probe) : > "$d/$2.start"; /bin/sh -c "$3" > "$d/$2.out" 2> "$d/$2.err"
    echo $? > "$d/$2.rc"; shift 3 ;;
  py) "$3" -c "$imp" "$d" "$2" "$4"; echo $? > "$d/py-$2.rc"; shift 4 ;;
  *) echo "lamina test runner: unknown group $1"; exit 70 ;;
  esac
done
: > "$d/done.$$"
read -r _ < "$d/{GATE}"
"""

IMPORTER = """import importlib, os, sys, traceback
d, tests = sys.argv[1], [t.split(":") for t in sys.argv[3].split(",")]
sys.argv = ["-c"]
for i, name in tests:
    open(f"{d}/{i}.start", "w").close()
    sys.stdout.flush(); sys.stderr.flush()
    fd = os.open(f"{d}/{i}.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)
    code = 0
    try:
        importlib.import_module(name)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BaseException:
        sys.stdout.flush(); traceback.print_exc(); code = 1
    sys.stdout.flush(); sys.stderr.flush()
    with open(f"{d}/{i}.rc.part", "w") as f: f.write(f"{code}\\n")
    os.replace(f"{d}/{i}.rc.part", f"{d}/{i}.rc")
"""


class Execution(Protocol):
    """One runner started in a test container."""

    def wait(self, seconds: float) -> int | None:
        """Its exit code, or None if it still runs after ``seconds``."""
        ...

    def attach(self, runner_pid: int) -> None:
        """The runner reported its pid (as its shell sees it): note what finds its processes."""
        ...

    def stop(self, overdue: bool) -> None:
        """End everything the runner's tests left running; when ``overdue`` (it hangs, or is
        gone already), the runner too. A runner that is done is then let go through the
        gate."""
        ...


class TestContainer(Protocol):
    """One container of a node's image, with ``results`` on the host at :data:`RESULTS_MOUNT`."""

    def start(self, argv: list[str], user: str | None, output: Path) -> Execution:
        """Run ``argv`` in the container (as ``user``, else the image's user); what the tool
        itself prints goes to ``output``."""
        ...


@dataclass(frozen=True)
class Item:
    """One thing to run in the container: a test of the chain, or the package probe."""

    index: int
    spec: TestSpec | None  # None: the package probe, run as the image's user
    command: str

    @property
    def user(self) -> str | None:
        return self.spec.user if self.spec else None

    @property
    def imports(self) -> tuple[str, str] | None:
        """(python, module) when this is an import test that can share an interpreter."""
        spec = self.spec
        if spec and spec.python and spec.module and MODULE.fullmatch(spec.module):
            return spec.python, spec.module
        return None


@dataclass(frozen=True)
class ItemResult:
    exit_code: int
    output: str  # combined stdout and stderr (the probe: stdout only)
    seconds: float
    errors: str = ""  # the probe's stderr


def items_for(specs: list[TestSpec], probe: str | None) -> list[Item]:
    items = [Item(0, None, probe)] if probe is not None else []
    return items + [Item(len(items) + n, spec, spec.run) for n, spec in enumerate(specs)]


def runs_of(items: list[Item]) -> list[list[Item]]:
    """One runner per user the items run as (the image's user first when the probe or the
    first test runs as it), each keeping the chain's order; results are reported in the
    chain's order whatever ran first."""
    runs: dict[str | None, list[Item]] = {}
    for item in items:
        runs.setdefault(item.user, []).append(item)
    return list(runs.values())


def groups_of(items: list[Item]) -> list[list[Item]]:
    """What one runner does in turn: each test on its own, except the import tests, which
    share one interpreter per Python (at the place of the first of them)."""
    out: list[list[Item]] = []
    shared: dict[str, list[Item]] = {}
    for item in items:
        imports = item.imports
        if imports is None:
            out.append([item])
        elif imports[0] in shared:
            shared[imports[0]].append(item)
        else:
            shared[imports[0]] = [item]
            out.append(shared[imports[0]])
    return out


def runner_argv(items: list[Item]) -> list[str]:
    argv = ["/bin/sh", "-c", RUNNER, "lamina-tests", IMPORTER]
    for group in groups_of(items):
        first = group[0]
        imports = first.imports
        if imports is None:
            argv += ["probe" if first.spec is None else "sh", str(first.index), first.command]
        else:
            tests = [f"{i.index}:{i.imports[1]}" for i in group if i.imports is not None]
            argv += ["py", str(first.index), imports[0], ",".join(tests)]
    return argv


def run_items(container: TestContainer, items: list[Item], results: Path, log: Path,
              timeout: float) -> dict[int, ItemResult]:
    """Run every item (each bounded by ``timeout`` seconds) and collect each one's result."""
    done: dict[int, ItemResult] = {}
    for run in runs_of(items):
        pending = list(run)
        attempt = 0
        while pending:
            attempt += 1
            output = results / f"tool-{pending[0].index}-{attempt}.log"
            execution = container.start(runner_argv(pending), pending[0].user, output)
            code, killed = _supervise(execution, pending, results, timeout)
            for item in pending:
                if (results / f"{item.index}.rc").is_file():
                    done[item.index] = _collect(results, item)
            # in the order the runner ran them: the first one not finished is where it stopped
            groups = groups_of(pending)
            rest = [i for group in groups for i in group if i.index not in done]
            if not rest:
                break
            first = rest[0]
            group = next(g for g in groups if first in g)
            interpreter = _read(results / f"py-{group[0].index}.rc").strip()
            if killed:
                note = f"\nlamina: timed out after {timeout:.0f}s\n"
                done[first.index] = _collect(results, first, TIMED_OUT, note)
                pending = [i for i in pending if i.index not in done]
            elif (results / f"{first.index}.start").is_file():
                # the import began and its interpreter died (a crash in an extension module)
                exit_code = int(interpreter) if interpreter.isdigit() else 1
                done[first.index] = _collect(results, first, exit_code)
                pending = [i for i in pending if i.index not in done]
            elif interpreter:
                # the interpreter ended before importing anything more (say, it is missing)
                why = _runner_logs(results).strip()
                unstarted = [i for i in group if i in rest]
                for item in unstarted:
                    done[item.index] = ItemResult(int(interpreter) if interpreter.isdigit()
                                                  else 1, why, 0.0)
                pending = [i for i in pending if i.index not in done]
            else:
                # the runner never reached it: the tool could not run it (an unknown user...)
                why = (_read(output) + _runner_logs(results)).strip()
                for item in rest:
                    done[item.index] = ItemResult(code if code else 1, why, 0.0)
                pending = []
    _append_log(log, items, done)
    return done


def _supervise(execution: Execution, pending: list[Item], results: Path, timeout: float
               ) -> tuple[int | None, bool]:
    """Wait for the runner to be done; end it early when no test started or finished for
    ``timeout`` seconds (the test running then, or the runner itself, hangs). Either way the
    runner is stopped with whatever its tests left running."""
    seen = -1
    since = time.monotonic()
    attached = False
    killed = False
    code: int | None = None
    while True:
        code = execution.wait(POLL_SECONDS)
        if not attached:
            pid = _runner_pid(results, "runner.")
            if pid is not None:
                execution.attach(pid)
                attached = True
        if code is not None:
            break
        if attached and _runner_pid(results, "done.") is not None:
            break
        progress = sum((results / f"{i.index}.{suffix}").is_file()
                       for i in pending for suffix in ("start", "rc"))
        if progress != seen:
            seen, since = progress, time.monotonic()
        elif time.monotonic() - since > timeout:
            killed = True
            break
    if code is not None or killed:
        execution.stop(overdue=True)
    else:
        execution.stop(overdue=False)
        _open_gate(results)
        if execution.wait(GATE_SECONDS) is None:
            execution.stop(overdue=True)
    final = execution.wait(GATE_SECONDS)
    return (code if code is not None else final), killed


def _open_gate(results: Path) -> None:
    """Let a runner waiting on the gate go: opening the FIFO for writing and closing it
    gives its ``read`` an end of file."""
    with contextlib.suppress(OSError):  # ENXIO: no reader, the runner is gone already
        os.close(os.open(results / GATE, os.O_WRONLY | os.O_NONBLOCK))


def _runner_pid(results: Path, prefix: str) -> int | None:
    """The pid in the newest ``<prefix><pid>`` marker not yet consumed."""
    for marker in results.glob(f"{prefix}[0-9]*"):
        if marker.name[len(prefix):].isdigit():
            marker.rename(marker.with_name(f"seen-{marker.name}"))
            return int(marker.name[len(prefix):])
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _runner_logs(results: Path) -> str:
    """What runners printed themselves (a missing interpreter, a shell error)."""
    return "".join(_read(p) for p in sorted(results.glob("runner.*.log")))


def _collect(results: Path, item: Item, exit_code: int | None = None, note: str = ""
             ) -> ItemResult:
    start, rc = results / f"{item.index}.start", results / f"{item.index}.rc"
    if exit_code is None:
        text = _read(rc).strip()
        exit_code = int(text) if text.isdigit() else 1
    try:
        began = start.stat().st_mtime
        ended = rc.stat().st_mtime if rc.is_file() else time.time()
        seconds = max(0.0, ended - began)
    except FileNotFoundError:
        seconds = 0.0
    output = _read(results / f"{item.index}.out") + note
    return ItemResult(exit_code, output, seconds, _read(results / f"{item.index}.err"))


def _append_log(log: Path, items: list[Item], done: dict[int, ItemResult]) -> None:
    """Every test's command and its own output, in order, into the node's log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        for item in items:
            result = done.get(item.index)
            if result is None:
                continue
            name = item.spec.name if item.spec else "package probe"
            text = item.command if item.spec else "(package probe)"
            body = result.output if item.spec else result.errors
            handle.write(redact(f"\n$ test: {text}\n{body}").encode())
            if body and not body.endswith("\n"):
                handle.write(b"\n")
            handle.write(f"lamina: {name}: exit {result.exit_code} "
                         f"({result.seconds:.2f}s)\n".encode())


@contextlib.contextmanager
def results_dir(parent: Path) -> Iterator[Path]:
    """A results directory for one node's tests, writable by any user of the image."""
    from lamina.scratch import owned_dir

    with owned_dir(parent, "tests-") as directory:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)
        os.mkfifo(directory / GATE)
        (directory / GATE).chmod(0o666)
        yield directory


def tail(text: str, lines: int = 2) -> str:
    """The last lines a test printed, redacted, for records and summaries."""
    useful = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(" | ".join(useful[-lines:])[-400:])
