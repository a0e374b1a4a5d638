#!/usr/bin/env python3
"""How long the ``lamina`` command takes to start, next to an interpreter that does nothing.

Runs the installed console script (``.venv/bin/lamina``, the guarded ``lamina.entry:main``)
``--runs`` times each (default 9) and prints the median wall time of each command, its median
CPU time (user + system: less disturbed than wall time on a busy machine), and the ratio of
its wall time to ``python -c pass`` of the same interpreter. One line:

    startup runs=N python_ms=P version_ms=V help_ms=H plan_ms=L ... version_ratio=V/P ...

``lamina plan`` runs on the shipped tree (the repository root) with a store in a temporary
directory, so it reads the recipe, renders every node and finds nothing built. The runs are
interleaved (one of each, then again) so a burst of load on the machine hits all of them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (CPU from the children's rusage delta)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=120, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace')[:500]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    lamina = Path(sys.executable).parent / "lamina"
    if not lamina.is_file():
        raise SystemExit(f"{lamina} not found: run scripts/setup")
    store = Path(tempfile.mkdtemp(prefix="lamina-bench-startup-"))
    env = {**os.environ, "LAMINA_STORE": str(store / "store")}
    env.pop("LAMINA_PROJECT", None)
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "version": [str(lamina), "--version"],
        "help": [str(lamina), "--help"],
        "plan": [str(lamina), "plan"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for argv in commands.values():  # warm the page cache and .pyc files
            run_once(argv, env)
        for _ in range(args.runs):
            for name, argv in commands.items():
                wall, cpu = run_once(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    wall_ms = {name: 1000 * statistics.median(v) for name, v in walls.items()}
    cpu_ms = {name: 1000 * statistics.median(v) for name, v in cpus.items()}
    fields = [f"runs={args.runs}"]
    fields += [f"{name}_ms={wall_ms[name]:.0f}" for name in commands]
    fields += [f"{name}_cpu_ms={cpu_ms[name]:.0f}" for name in commands]
    fields += [f"{name}_ratio={wall_ms[name] / wall_ms['python']:.1f}"
               for name in commands if name != "python"]
    fields.append(f"load={os.getloadavg()[0]:.1f}")
    print("startup " + " ".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main())
