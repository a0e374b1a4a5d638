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
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from lamina.builders.base import (
    PROBE_TIMEOUT,
    QUICK_TIMEOUT,
    STEP_TIMEOUT,
    StepCallback,
    build_timeout,
)
from lamina.errors import ToolError
from lamina.layerkinds import CA_SECRET_ID
from lamina.procs import run_logged, tail, tool_message
from lamina.proctree import kill_tree
from lamina.redact import redact
from lamina.render import KEY_LABEL, BuildUnit, local_tag
from lamina.settings import Settings
from lamina.staging import ExportCount, StagingLayout
from lamina.store import Store
from lamina.testrunner import RESULTS_MOUNT, TestContainer

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

    def __init__(self) -> None:
        # tags this process built or loaded: a node's tests, and its children's builds, need
        # no `buildah inspect` to know they exist (one less tool start per node and child)
        self._local: set[str] = set()

    def check(self) -> list[str]:
        problems = []
        for tool in (BUILDAH, "skopeo"):
            if shutil.which(tool) is None:
                problems.append(f"{tool} not found (run scripts/setup, or apt-get install {tool})")
        return problems

    def _exists(self, tag: str) -> bool:
        if tag in self._local:
            return True
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
        self._local.add(tag)

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
        self._local.add(unit.local_tag)

    def export(self, unit: BuildUnit, staging: StagingLayout, log: Path) -> ExportCount:
        parent = unit.image.parent_name
        if parent is not None:
            staging.seed_parent_layers(staging.store.get(f"{parent}-{unit.platform.arch}"))
        run_logged([BUILDAH, "push", "--quiet", "--format", "oci", unit.local_tag,
                    staging.transport(unit.store_ref)], log,
                   what=f"export {unit.store_ref}", timeout=STEP_TIMEOUT)
        return staging.reuse_parent_layers(unit.store_ref)

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

    @contextlib.contextmanager
    def test_container(self, unit: BuildUnit, results: Path) -> Iterator[TestContainer]:
        """One container of the node's image for all its tests (and the package probe)."""
        if "," in str(results):
            raise ToolError(f"the test results directory {results} has a ',' in its path, "
                            "which buildah's --mount cannot carry")
        name = self._container(unit, "test")
        try:
            yield _Container(name, results)
        finally:
            self._remove(name)


class _Execution:
    """A ``buildah run`` of a test runner. buildah's chroot isolation gives each run a mount
    namespace of its own but keeps the host's pid namespace, so the pid the runner reports is
    its host pid, and every process its tests started, even one that left the runner's
    process tree (a server started in the background, now a child of init), is found by
    that mount namespace and ended with the run: nothing a test starts outlives it."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.namespace: str | None = None
        self.runner = 0

    def wait(self, seconds: float) -> int | None:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def attach(self, runner_pid: int) -> None:
        namespace = _mount_namespace(runner_pid)
        if namespace is not None and namespace != _mount_namespace(os.getpid()):
            self.namespace = namespace
            self.runner = runner_pid

    def stop(self, overdue: bool) -> None:
        spared = set() if overdue else {self.runner, *_ancestors(self.runner)}
        if self.namespace is not None:
            for pid in _pids_in(self.namespace):
                if pid not in spared:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
        if overdue:
            kill_tree(self.proc.pid)


def _mount_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _ancestors(pid: int) -> list[int]:
    out: list[int] = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat[stat.rfind(")") + 2:].split()[1])
        out.append(pid)
    return out


def _pids_in(namespace: str) -> list[int]:
    """Processes in the mount namespace ``namespace`` (see namespaces(7))."""
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _mount_namespace(int(entry.name)) == namespace]


class _Container:
    """``buildah run`` in one working container, the results directory bind-mounted."""

    def __init__(self, name: str, results: Path) -> None:
        self.name = name
        self.results = results

    def start(self, argv: list[str], user: str | None, output: Path) -> _Execution:
        cmd = [BUILDAH, "run", "--isolation", "chroot", "--mount",
               f"type=bind,source={self.results},destination={RESULTS_MOUNT},rw"]
        if user:
            cmd += ["--user", user]
        cmd += [self.name, "--", *argv]
        with output.open("wb") as handle:
            return _Execution(subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))
