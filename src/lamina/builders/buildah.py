"""The default backend: buildah through subprocess, daemonless.

Builds use chroot isolation (Debian bookworm's crun cannot run on hybrid-cgroup hosts, and
chroot works as root in CI containers), ``--layers`` so each lamina layer is one OCI layer,
``--no-cache`` because lamina's own keys decide what to rebuild, and ``--timestamp`` so
that image and file times are the fixed epoch. The site CA is a build secret: mounted for
RUN steps, never committed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from lamina.builders.base import StepCallback, TestOutcome
from lamina.errors import ToolError
from lamina.layerkinds import CA_SECRET_ID
from lamina.procs import run_logged, tail
from lamina.redact import redact
from lamina.render import KEY_LABEL, BuildUnit, local_tag
from lamina.settings import Settings
from lamina.store import Store

STEP_RE = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
BUILDAH = "buildah"


NOISE = ("Error: building at STEP", "subprocess exited with status", "error running container",
         "--> ")


def failed_step(unit: BuildUnit, log: Path) -> tuple[str, str]:
    """Which layer failed and the last lines that step printed, from the build log."""
    lines = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if STEP_RE.match(line.strip())]
    if not starts:
        return "", tail(log)
    step_line = lines[starts[-1]].strip()
    body = [line.strip() for line in lines[starts[-1] + 1:]
            if line.strip() and not line.strip().startswith(NOISE)]
    instruction = STEP_RE.match(step_line)
    where = ""
    if instruction:
        for rendered in unit.layers:
            if rendered.instruction.startswith(instruction[3][:60]):
                where = f" in layer {rendered.layer.name} ({rendered.layer.kind})"
                break
    return where, " | ".join(body[-3:])[-400:] or tail(log)


class BuildahBuilder:
    name = "buildah"

    def check(self) -> list[str]:
        problems = []
        for tool in (BUILDAH, "skopeo"):
            if shutil.which(tool) is None:
                problems.append(f"{tool} not found (run scripts/setup, or apt-get install {tool})")
        return problems

    def _exists(self, tag: str) -> bool:
        proc = subprocess.run([BUILDAH, "inspect", "--type", "image", tag],
                              capture_output=True, check=False)
        return proc.returncode == 0

    def _from_store(self, store: Store, ref: str, tag: str, log: Path) -> None:
        run_logged(["skopeo", "copy", "--quiet", store.transport(ref),
                    f"containers-storage:{tag}"], log, what=f"load {ref} from the store")

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
        with log.open("ab") as handle:
            handle.write(f"\n$ {redact(' '.join(cmd))}\n".encode())
            handle.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=env)
            assert proc.stdout is not None
            for raw in proc.stdout:
                handle.write(redact(raw.decode(errors="replace")).encode())
                match = STEP_RE.match(raw.decode(errors="replace").strip())
                if match:
                    step(f"step {match[1]}/{match[2]}: {match[3][:60]}")
            code = proc.wait()
        if code != 0:
            where, output = failed_step(unit, log)
            raise ToolError(f"buildah bud failed (exit {code}){where}: {redact(output)} "
                            f"[log: {log}]")

    def export(self, unit: BuildUnit, store: Store, log: Path) -> None:
        with store.locked():
            run_logged([BUILDAH, "push", "--quiet", "--format", "oci", unit.local_tag,
                        store.transport(unit.store_ref)], log,
                       what=f"store {unit.store_ref}")

    def output_of(self, unit: BuildUnit, command: str) -> str:
        """What ``command`` prints inside the node's image (for version checks)."""
        name = f"lamina-probe-{uuid.uuid4().hex[:12]}"
        subprocess.run([BUILDAH, "from", "--quiet", "--pull-never", "--name", name,
                        "--platform", unit.platform.name, unit.local_tag],
                       capture_output=True, check=True)
        try:
            proc = subprocess.run([BUILDAH, "run", "--isolation", "chroot", name, "--",
                                   "/bin/sh", "-c", command], capture_output=True, text=True,
                                  check=False, timeout=300)
        finally:
            subprocess.run([BUILDAH, "rm", name], capture_output=True, check=False)
        if proc.returncode != 0:
            raise ToolError(f"'{command}' failed in {unit.store_ref}: "
                            f"{redact(proc.stderr.strip()[-200:])}")
        return proc.stdout.strip()

    def run_test(self, unit: BuildUnit, command: str, user: str | None, log: Path,
                 timeout: float) -> TestOutcome:
        name = f"lamina-test-{uuid.uuid4().hex[:12]}"
        start = time.monotonic()
        run_logged([BUILDAH, "from", "--quiet", "--pull-never", "--name", name,
                    "--platform", unit.platform.name, unit.local_tag], log,
                   what=f"test container for {unit.store_ref}")
        try:
            cmd = [BUILDAH, "run", "--isolation", "chroot"]
            if user:
                cmd += ["--user", user]
            cmd += [name, "--", "/bin/sh", "-c", command]
            with log.open("ab") as handle:
                handle.write(f"\n$ test: {command}\n".encode())
                handle.flush()
                try:
                    proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT,
                                          timeout=timeout, check=False)
                    code = proc.returncode
                except subprocess.TimeoutExpired:
                    handle.write(f"\nlamina: test timed out after {timeout:.0f}s\n".encode())
                    code = 124
        finally:
            subprocess.run([BUILDAH, "rm", name], capture_output=True, check=False)
        return TestOutcome(passed=code == 0, exit_code=code, output_tail=redact(tail(log, 2)),
                           seconds=time.monotonic() - start)
