#!/usr/bin/env python3
"""The analyst's inner loop on the shipped tree: edit a file of analysis-example, build.

First the host platform's chain up to analysis-example is built if it is not (a full build
takes about 20 minutes once; later runs find it in the store). Then one file of the analysis
package changes and ``lamina build analysis-example`` rebuilds, stores and tests the node (all
inherited and own tests), timed. The same Containerfile is then built with raw ``buildah bud``
from the same context, and the image's own workload test run once in it, for the ratio.
The edited file is restored afterwards. Prints one line:
    inner_loop total_s=T plan_s= build_s= store_s= hygiene_s= probe_s= tests_s= other_s=
        tests=N raw_build_s= raw_test_s= raw_s= ratio=T/raw_s
(the phases are the node's, from ``build --json``; other_s is the rest of the command: its
start-up and the plan of the whole tree.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _support import node_context, remove_buildah_images, timed

HERE = Path(__file__).resolve().parent.parent
LAMINA = str(Path(sys.executable).with_name("lamina"))
IMAGE = "analysis-example"
EDITED = HERE / "layers/analysis-example/files/hepdemo/analysis.py"
PHASES = ("plan", "build", "store", "hygiene", "probe", "tests")
RAW_TAG = "localhost/bench-raw/"


def build() -> tuple[float, dict[str, Any]]:
    """``lamina build`` of analysis-example for the host platform: (seconds, its result)."""
    from lamina.platforms import host_platform

    command = [LAMINA, "-C", str(HERE), "build", "--platform", host_platform().name,
               "--json", IMAGE]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=7200, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"lamina build failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                         f"{proc.stderr[-2000:]}")
    return seconds, next(r for r in json.loads(proc.stdout) if r["image"] == IMAGE)


def workload_test() -> str:
    from lamina.recipe import load_recipe

    return load_recipe(HERE).images[IMAGE].tests[0].run


def raw_test(command: str) -> float:
    """One run of the workload test in a new container of the raw image."""
    start = time.perf_counter()
    name = subprocess.run(["buildah", "from", "--quiet", "--pull-never", f"{RAW_TAG}{IMAGE}"],
                          capture_output=True, text=True, timeout=300, check=True
                          ).stdout.strip()
    try:
        subprocess.run(["buildah", "run", "--isolation", "chroot", name, "--", "/bin/sh", "-c",
                        command], capture_output=True, timeout=900, check=True)
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, timeout=300, check=False)
    return time.perf_counter() - start


def main() -> int:
    original = EDITED.read_text()
    build()  # warm: the chain is built (and tested) once
    tmp = Path(tempfile.mkdtemp(prefix="lamina-bench-"))
    try:
        EDITED.write_text(original + f"\n# inner-loop bench edit {time.time_ns()}\n")
        total, node = build()
        if node["outcome"] != "built" or not all(t["passed"] for t in node["tests"]):
            raise SystemExit(f"{IMAGE} was not rebuilt and tested: {node}")
        phases = node["phases"]
        _, bud = node_context(HERE, IMAGE, tmp / "context")
        raw_build = timed(bud)
        raw_run = raw_test(workload_test())
    finally:
        EDITED.write_text(original)
        remove_buildah_images((RAW_TAG,))
        shutil.rmtree(tmp, ignore_errors=True)
    raw = raw_build + raw_run
    figures = " ".join(f"{p}_s={phases.get(p, 0.0):.2f}" for p in PHASES)
    other = total - sum(phases.get(p, 0.0) for p in PHASES)
    print(f"inner_loop total_s={total:.2f} {figures} other_s={other:.2f} "
          f"tests={len(node['tests'])} raw_build_s={raw_build:.2f} raw_test_s={raw_run:.2f} "
          f"raw_s={raw:.2f} ratio={total / raw:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
