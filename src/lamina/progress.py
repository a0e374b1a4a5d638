"""Progress for long work: which node, which step, how long, on a terminal or in CI logs.

On a terminal a live panel shows every running node with its current step and elapsed time;
elsewhere (CI, pipes) each start, step change and finish is one timestamped line, which
is what a CI log reader wants.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

OUTCOME_STYLE = {
    "built": "green", "tested": "green", "up-to-date": "dim", "failed": "bold red",
    "blocked": "yellow", "excluded": "dim", "published": "green", "skipped": "dim",
}


class Progress:
    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        probe = Console(stderr=True)
        self.console = console or Console(stderr=True, width=None if probe.is_terminal else 200)
        self.quiet = quiet
        self.live_mode = self.console.is_terminal and not quiet
        self._lock = threading.Lock()
        self._running: dict[str, tuple[float, str]] = {}
        self._total = 0
        self._done = 0
        self._live: Live | None = None

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_row(f"[bold]lamina[/] {self._done}/{self._total} done")
        now = time.monotonic()
        for label, (started, step) in sorted(self._running.items()):
            table.add_row(f"  [cyan]{label}[/]  {step}  [dim]{now - started:5.0f}s[/]")
        return table

    def _line(self, text: str) -> None:
        if not self.quiet:
            stamp = time.strftime("%H:%M:%S")
            self.console.print(f"[dim]{stamp}[/] {text}", highlight=False)

    def start(self, total: int) -> None:
        self._total = total
        if self.live_mode and total:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4,
                              transient=True)
            self._live.start()
            threading.Thread(target=self._tick, daemon=True).start()

    def _tick(self) -> None:
        while self._live is not None:
            with self._lock:
                if self._live is not None:
                    self._live.update(self._render())
            time.sleep(0.5)

    def begin(self, label: str) -> None:
        with self._lock:
            self._running[label] = (time.monotonic(), "starting")
            if self._live is None:
                self._line(f"start  {label}")

    def step(self, label: str, text: str) -> None:
        with self._lock:
            started, previous = self._running.get(label, (time.monotonic(), ""))
            self._running[label] = (started, text)
            if self._live is None and text != previous:
                self._line(f"       {label}: {text}")

    def note(self, text: str) -> None:
        """One line that must be seen even with ``--json`` (it goes to stderr), e.g. why a
        run is waiting."""
        with self._lock:
            stamp = time.strftime("%H:%M:%S")
            self.console.print(f"{stamp} {text}", highlight=False, markup=False, soft_wrap=True)

    def done(self, label: str, outcome: str, seconds: float = 0.0, error: str = "") -> None:
        with self._lock:
            self._running.pop(label, None)
            self._done += 1
            style = OUTCOME_STYLE.get(outcome, "")
            suffix = f" - {error}" if error else ""
            self._line(f"[{style}]{outcome:<7}[/] {label} ({seconds:.0f}s){suffix}")

    def stop(self) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
