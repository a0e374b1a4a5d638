"""The default backend: buildah through subprocess, daemonless.

Builds use chroot isolation (Debian bookworm's crun cannot run on hybrid-cgroup hosts, and
chroot works as root in CI containers), ``--layers`` so each lamina layer is one OCI layer,
``--no-cache`` because lamina's own keys decide what to rebuild, and ``--timestamp`` so
that image and file times are the fixed epoch. The site CA is a build secret: mounted for
RUN steps, never committed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import BinaryIO

from lamina.builders.base import (
    PROBE_TIMEOUT,
    QUICK_TIMEOUT,
    STEP_TIMEOUT,
    StepCallback,
    TestOutcome,
    build_timeout,
)
from lamina.errors import ToolError
from lamina.layerkinds import CA_SECRET_ID
from lamina.procs import run_logged, tail, tool_message
from lamina.proctree import kill_tree
from lamina.redact import redact
from lamina.render import KEY_LABEL, BuildUnit, local_tag
from lamina.settings import Settings
from lamina.staging import StagingLayout
from lamina.store import Store

STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
BUILDAH = "buildah"

# buildah's own lines after a failing step's output: they repeat the exit status and the
# whole instruction, and Go's %v of a struct (``&{...}``) when the failure is a mount
NOISE = ("Error: building at STEP", "error building at STEP", "subprocess exited with status",
         "error running container", "--> ", "time=", "WARN[", "ERRO[", "INFO[")
STRUCT_DUMP = re.compile(r"&\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")


def step_layers(unit: BuildUnit) -> dict[int, str]:
    """Step number (as buildah counts Containerfile instructions) → the layer it renders,
    read from the Containerfile itself: ``# layer i/N: name (kind)`` precedes a layer's
    instruction (see :meth:`lamina.render.BuildUnit.containerfile`)."""
    out: dict[int, str] = {}
    step = 0
    pending = ""
    for line in unit.containerfile().splitlines():
        text = line.strip()
        if text.startswith("# layer "):
            pending = text.partition(": ")[2]
        elif text and not text.startswith("#"):
            step += 1
            if pending:
                out[step] = pending
            pending = ""
    return out


def _buildah_reason(lines: list[str], instruction: str) -> str:
    """buildah's own last error, without the instruction it repeats or struct dumps."""
    errors = [line for line in lines if line.startswith(("Error: ", "error "))]
    if not errors:
        return ""
    reason = errors[-1].removeprefix("Error: ")
    for prefix in (f'building at STEP "{instruction}": ',
                   f'error building at STEP "{instruction}": '):
        reason = reason.replace(prefix, "")
    return STRUCT_DUMP.sub("", reason).strip(" :")[:300]


def failed_step(unit: BuildUnit, log: Path) -> tuple[str, str]:
    """Which layer failed and the last lines that step printed, from the build log."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    starts = [i for i, line in enumerate(lines) if STEP_RE.match(line)]
    if not starts:
        return "", tail(log)
    match = STEP_RE.match(lines[starts[-1]])
    assert match is not None
    layer = step_layers(unit).get(int(match[1]))
    where = f" in layer {layer} at step {match[1]}/{match[2]}" if layer else \
        f" at step {match[1]}/{match[2]} ({match[3][:60]})"
    after = lines[starts[-1] + 1:]
    body = [line for line in after if line and not line.startswith(NOISE)]
    output = " | ".join(body[-3:])[-400:]
    if not output:
        output = _buildah_reason(after, match[3]) or "the step printed nothing"
    return where, output


def bounded(cmd: list[str], timeout: float, output: BinaryIO | None = None
            ) -> tuple[int | None, bytes, bytes]:
    """Run ``cmd`` for at most ``timeout`` seconds: (exit code or None if it was killed with
    everything it started, stdout, stderr). With ``output``, both streams go there."""
    if output is not None:
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT)
    else:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=QUICK_TIMEOUT)  # a survivor may hold the pipes
        return None, b"", b""
    except BaseException:
        kill_tree(proc.pid)
        proc.wait()
        raise
    return proc.returncode, out or b"", err or b""


class BuildahBuilder:
    name = "buildah"

    def check(self) -> list[str]:
        problems = []
        for tool in (BUILDAH, "skopeo"):
            if shutil.which(tool) is None:
                problems.append(f"{tool} not found (run scripts/setup, or apt-get install {tool})")
        return problems

    def _exists(self, tag: str) -> bool:
        try:
            proc = subprocess.run([BUILDAH, "inspect", "--type", "image", tag],
                                  capture_output=True, check=False, timeout=QUICK_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ToolError(f"buildah inspect {tag} timed out after {QUICK_TIMEOUT:.0f}s"
                            ) from None
        return proc.returncode == 0

    def _from_store(self, store: Store, ref: str, tag: str, log: Path) -> None:
        run_logged(["skopeo", "copy", "--quiet", store.transport(ref),
                    f"containers-storage:{tag}"], log, what=f"load {ref} from the store",
                   timeout=STEP_TIMEOUT)

    def ensure_local(self, unit: BuildUnit, store: Store, log: Path) -> None:
        if not self._exists(unit.local_tag):
            self._from_store(store, unit.store_ref, unit.local_tag, log)

    def _ensure_parent(self, unit: BuildUnit, store: Store, log: Path) -> None:
        parent = unit.image.parent_name
        if parent is None or unit.parent_key is None:
            return
        tag = local_tag(parent, unit.platform, unit.parent_key)
        if self._exists(tag):
            return
        ref = f"{parent}-{unit.platform.arch}"
        stored = store.get(ref)
        if stored is None or stored.annotations.get(KEY_LABEL) != unit.parent_key:
            raise ToolError(f"parent {parent} for {unit.platform} is not in the store with the "
                            "expected key; build it first")
        self._from_store(store, ref, tag, log)

    def build(self, unit: BuildUnit, context: Path, settings: Settings, store: Store,
              log: Path, step: StepCallback) -> None:
        self._ensure_parent(unit, store, log)
        cmd = [
            BUILDAH, "bud", "--isolation", "chroot", "--layers", "--no-cache",
            "--timestamp", str(unit.epoch), "--platform", unit.platform.name,
            "--format", "oci", "-f", str(context / "Containerfile"),
            "-t", unit.local_tag,
            "--build-arg", f"SOURCE_DATE_EPOCH={unit.epoch}",
            "--annotation", f"{KEY_LABEL}={unit.key}",
            "--pull-never" if unit.image.external is None else "--pull",
        ]
        for name, value in sorted(unit.build_args.items()):
            cmd += ["--build-arg", f"{name}={value}"]
        if settings.ca_bundle is not None:
            cmd += ["--secret", f"id={CA_SECRET_ID},src={settings.ca_bundle}"]
        cmd.append(str(context))
        log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, BUILDAH_LAYERS="true")
        timeout = build_timeout()
        timed_out = threading.Event()
        with log.open("ab") as handle:
            handle.write(f"\n$ {redact(' '.join(cmd))}\n".encode())
            handle.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env)

            def expire() -> None:
                timed_out.set()
                kill_tree(proc.pid)

            watchdog = threading.Timer(timeout, expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    handle.write(redact(raw.decode(errors="replace")).encode())
                    match = STEP_RE.match(raw.decode(errors="replace").strip())
                    if match:
                        step(f"step {match[1]}/{match[2]}: {match[3][:60]}")
                code = proc.wait()
            except BaseException:
                kill_tree(proc.pid)
                proc.wait()
                raise
            finally:
                watchdog.cancel()
        if timed_out.is_set():
            where, _ = failed_step(unit, log)
            raise ToolError(f"buildah bud timed out after {timeout:.0f}s{where} "
                            f"(LAMINA_BUILD_TIMEOUT) [log: {log}]")
        if code != 0:
            where, output = failed_step(unit, log)
            raise ToolError(f"buildah bud failed (exit {code}){where}: {redact(output)} "
                            f"[log: {log}]")

    def export(self, unit: BuildUnit, staging: StagingLayout, log: Path) -> None:
        parent = unit.image.parent_name
        if parent is not None:
            staging.seed(staging.store.get(f"{parent}-{unit.platform.arch}"))
        run_logged([BUILDAH, "push", "--quiet", "--format", "oci", unit.local_tag,
                    staging.transport(unit.store_ref)], log,
                   what=f"export {unit.store_ref}", timeout=STEP_TIMEOUT)

    def _container(self, unit: BuildUnit, purpose: str) -> str:
        name = f"lamina-{purpose}-{uuid.uuid4().hex[:12]}"
        try:
            proc = subprocess.run([BUILDAH, "from", "--quiet", "--pull-never", "--name", name,
                                   "--platform", unit.platform.name, unit.local_tag],
                                  capture_output=True, text=True, check=False,
                                  timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ToolError(f"buildah from {unit.local_tag} ({purpose}) timed out after "
                            f"{STEP_TIMEOUT:.0f}s") from None
        if proc.returncode != 0:
            raise ToolError(f"buildah from {unit.local_tag} ({purpose}) failed: "
                            f"{redact(tool_message(proc.stderr))}")
        return name

    def _remove(self, name: str) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run([BUILDAH, "rm", name], capture_output=True, check=False,
                           timeout=QUICK_TIMEOUT)

    def output_of(self, unit: BuildUnit, command: str) -> str:
        """What ``command`` prints inside the node's image (the package probe)."""
        name = self._container(unit, "probe")
        try:
            code, out, err = bounded([BUILDAH, "run", "--isolation", "chroot", name, "--",
                                      "/bin/sh", "-c", command], PROBE_TIMEOUT)
        finally:
            self._remove(name)
        if code is None:
            raise ToolError(f"the package probe in {unit.store_ref} timed out after "
                            f"{PROBE_TIMEOUT:.0f}s")
        if code != 0:
            raise ToolError(f"'{command[:60]}' failed in {unit.store_ref}: "
                            f"{redact(err.decode(errors='replace').strip()[-200:])}")
        return out.decode(errors="replace").strip()

    def run_test(self, unit: BuildUnit, command: str, user: str | None, log: Path,
                 timeout: float) -> TestOutcome:
        start = time.monotonic()
        log.parent.mkdir(parents=True, exist_ok=True)
        name = self._container(unit, "test")
        try:
            cmd = [BUILDAH, "run", "--isolation", "chroot"]
            if user:
                cmd += ["--user", user]
            cmd += [name, "--", "/bin/sh", "-c", command]
            with log.open("ab") as handle:
                handle.write(f"\n$ test: {command}\n".encode())
                handle.flush()
                code, _, _ = bounded(cmd, timeout, handle)
                if code is None:
                    handle.write(f"\nlamina: test timed out after {timeout:.0f}s\n".encode())
                    code = 124
        finally:
            self._remove(name)
        return TestOutcome(passed=code == 0, exit_code=code, output_tail=redact(tail(log, 2)),
                           seconds=time.monotonic() - start)
