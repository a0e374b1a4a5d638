"""The Docker engine backend, through the ``docker`` SDK.

The SDK drives the engine's classic builder, which has no ``RUN --mount``; so instead of a
Containerfile each layer is one container step committed to one layer: RUN steps run with
the layer's files and the site CA bind-mounted under a tmpfs ``/run`` (so no mount point is
committed), COPY steps go in with ``put_archive``, and the image config is applied with the
last commit. Keys, labels, tests and the store are the same as with buildah; digests are not
(the engine stamps commit times), so reproducible digests remain a buildah property.
The engine also cannot label an imported root filesystem with a foreign architecture, so
this backend builds the host platform only.

Engine errors that the SDK hands back inside a response stream (``{"error": ...}`` lines, as
import and push do) are parsed and fail the step instead of passing silently.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import requests

from lamina.builders.base import (
    PROBE_TIMEOUT,
    STEP_TIMEOUT,
    StepCallback,
    build_timeout,
    pip_cache,
)
from lamina.errors import ToolError
from lamina.layerkinds import CA_PATH, CTX_MOUNT, RenderedLayer
from lamina.pipcache import MOUNT as PIP_CACHE_MOUNT
from lamina.platforms import host_platform
from lamina.procs import run_logged
from lamina.proctree import kill_tree
from lamina.redact import redact
from lamina.render import KEY_LABEL, BuildUnit, local_tag
from lamina.settings import Settings
from lamina.staging import ExportCount, StagingLayout
from lamina.store import Store
from lamina.testrunner import RESULTS_MOUNT, TestContainer


def stream_errors(chunks: Iterable[Any]) -> list[str]:
    """Error messages carried inside an engine response stream (JSON lines or dicts)."""
    errors: list[str] = []
    for chunk in chunks:
        items: list[Any] = []
        if isinstance(chunk, dict):
            items = [chunk]
        else:
            text = chunk.decode(errors="replace") if isinstance(chunk, bytes) else str(chunk)
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        items.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        for item in items:
            if isinstance(item, dict) and (item.get("error") or item.get("errorDetail")):
                detail = item.get("errorDetail") or {}
                errors.append(str(item.get("error") or detail.get("message")))
    return errors


class DockerBuilder:
    name = "docker"

    def __init__(self) -> None:
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                # every API call is bounded; waits for a step or a test pass their own
                self._client = docker.from_env(timeout=int(STEP_TIMEOUT))
                self._client.ping()
            except Exception as exc:
                raise ToolError(f"Docker engine not reachable ({type(exc).__name__}); start "
                                "dockerd or use --builder buildah") from None
        return self._client

    def check(self) -> list[str]:
        problems = []
        if shutil.which("skopeo") is None:
            problems.append("skopeo not found (run scripts/setup)")
        try:
            self.client  # noqa: B018 - connecting is the check
        except ToolError as exc:
            problems.append(str(exc))
        return problems

    def _has(self, tag: str) -> bool:
        import docker.errors

        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
        return True

    def _load(self, store: Store, ref: str, tag: str, log: Path) -> None:
        run_logged(["skopeo", "copy", "--quiet", store.transport(ref),
                    f"docker-daemon:{tag}"], log, what=f"load {ref} into the Docker engine",
                   timeout=STEP_TIMEOUT)

    def ensure_local(self, unit: BuildUnit, store: Store, log: Path) -> None:
        if not self._has(unit.local_tag):
            self._load(store, unit.store_ref, unit.local_tag, log)

    def _start_image(self, unit: BuildUnit, context: Path, store: Store, log: Path) -> str:
        first = unit.layers[0] if unit.layers else None
        if unit.image.parent_name is not None and unit.parent_key is not None:
            tag = local_tag(unit.image.parent_name, unit.platform, unit.parent_key)
            if not self._has(tag):
                self._load(store, f"{unit.image.parent_name}-{unit.platform.arch}", tag, log)
            return tag
        if unit.image.external is not None:
            self.client.images.pull(unit.parent_ref)
            return unit.parent_ref
        assert first is not None and first.layer.kind == "rootfs"
        tar = context / f"rootfs-{first.layer.name}-{unit.platform.arch}.tar"
        tag = f"lamina-build/{unit.name}:{uuid.uuid4().hex[:12]}"
        repository, _, name_tag = tag.partition(":")
        answer = self.client.api.import_image_from_file(str(tar), repository=repository,
                                                        tag=name_tag)
        errors = stream_errors([answer])
        if errors:
            raise ToolError(f"docker import of the root filesystem failed: {errors[0]}")
        return tag

    def build(self, unit: BuildUnit, context: Path, settings: Settings, store: Store,
              log: Path, step: StepCallback) -> None:
        import docker.errors

        try:
            self._build(unit, context, settings, store, log, step)
        except requests.exceptions.Timeout:
            raise ToolError(f"docker engine: a build step did not answer within its timeout "
                            f"[log: {log}]") from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # the SDK's message is the engine's answer; keep it to one redacted line
            message = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise ToolError(f"docker engine: {message} [log: {log}]") from None

    def _build(self, unit: BuildUnit, context: Path, settings: Settings, store: Store,
               log: Path, step: StepCallback) -> None:
        if unit.platform != host_platform():
            raise ToolError(f"the docker builder builds {host_platform()} only; use buildah "
                            f"for {unit.platform}")
        image = self._start_image(unit, context, store, log)
        layers = unit.layers[1:] if unit.image.parent_name is None and \
            unit.image.external is None else unit.layers
        env = {"SOURCE_DATE_EPOCH": str(unit.epoch), **unit.build_args}
        total = len(layers)
        for index, rendered in enumerate(layers, start=1):
            step(f"layer {index}/{total}: {rendered.layer.name}")
            last = index == total
            changes = unit.config_instructions() if last else []
            if rendered.copy is not None:
                image = self._copy(image, context, rendered.copy, changes, unit)
            elif rendered.run_body is not None:
                image = self._run(image, context, rendered, settings, env, changes, log)
        if not layers:
            image = self._commit_config(image, unit)
        self.client.images.get(image).tag(*unit.local_tag.rsplit(":", 1))

    def _commit_config(self, image: str, unit: BuildUnit) -> str:
        container = self.client.containers.create(image, command=["/bin/true"])
        try:
            committed = container.commit(changes=unit.config_instructions())
        finally:
            container.remove(force=True)
        return str(committed.id)

    def _copy(self, image: str, context: Path, copy: tuple[str, str, str | None],
              changes: list[str], unit: BuildUnit) -> str:
        source, dest, mode = copy
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            src = context / source
            for path in sorted([src, *src.rglob("*")]) if src.is_dir() else [src]:
                rel = path.relative_to(src).as_posix() if src.is_dir() else path.name
                arcname = (dest.rstrip("/") + "/" + rel).lstrip("/") if rel != "." else \
                    dest.strip("/")
                info = tar.gettarinfo(str(path), arcname=arcname)
                info.mtime = min(int(info.mtime), unit.epoch)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if mode and info.isfile():
                    info.mode = int(mode, 8)
                if info.isfile():
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
        container = self.client.containers.create(image, command=["/bin/true"])
        try:
            if not container.put_archive("/", buffer.getvalue()):
                raise ToolError(f"docker refused the files of {source}")
            committed = container.commit(changes=changes)
        finally:
            container.remove(force=True)
        return str(committed.id)

    def _run(self, image: str, context: Path, rendered: RenderedLayer, settings: Settings,
             env: dict[str, str], changes: list[str], log: Path) -> str:
        body, bind_dir, layer = rendered.run_body or "", rendered.bind_dir, rendered.layer.name
        volumes: dict[str, dict[str, str]] = {}
        if bind_dir is not None:
            volumes[str((context / bind_dir).resolve())] = {"bind": CTX_MOUNT, "mode": "ro"}
        if rendered.pip_cache:
            cache = pip_cache(settings)
            cache.mkdir(parents=True, exist_ok=True)
            volumes[str(cache.resolve())] = {"bind": PIP_CACHE_MOUNT, "mode": "rw"}
        if settings.ca_bundle is not None:
            volumes[str(settings.ca_bundle)] = {"bind": CA_PATH, "mode": "ro"}
        container = self.client.containers.create(
            image, command=["/bin/sh", "-c", body], environment=env, volumes=volumes,
            tmpfs={"/run": "rw,mode=755"}, user="0", network_mode="host")
        try:
            container.start()
            timeout = build_timeout()
            try:
                result = container.wait(timeout=timeout)
            except requests.exceptions.RequestException:
                container.kill()
                raise ToolError(f"docker step in layer {layer} timed out after "
                                f"{timeout:.0f}s (LAMINA_BUILD_TIMEOUT) [log: {log}]") from None
            output = container.logs(stdout=True, stderr=True)
            with log.open("ab") as handle:
                handle.write(redact(output.decode(errors="replace")).encode())
            code = int(result.get("StatusCode", 1))
            if code != 0:
                tail = redact(output.decode(errors="replace").strip().splitlines()[-1]
                              if output.strip() else "")
                raise ToolError(f"docker step failed (exit {code}) in layer {layer}: {tail} "
                                f"[log: {log}]")
            committed = container.commit(changes=changes)
        finally:
            container.remove(force=True)
        return str(committed.id)

    def export(self, unit: BuildUnit, staging: StagingLayout, log: Path) -> ExportCount:
        # the engine, too, names layers by their uncompressed digests: see lamina.staging
        parent = unit.image.parent_name
        if parent is not None:
            staging.seed_parent_layers(staging.store.get(f"{parent}-{unit.platform.arch}"))
        run_logged(["skopeo", "copy", "--quiet", "--dest-compress",
                    "--dest-compress-format", "gzip", f"docker-daemon:{unit.local_tag}",
                    staging.transport(unit.store_ref)], log, what=f"export {unit.store_ref}",
                   timeout=STEP_TIMEOUT)
        count = staging.reuse_parent_layers(unit.store_ref)
        # Engine images carry no manifest annotations; add the key lamina plans with.
        staging.annotate(unit.store_ref, {KEY_LABEL: unit.key})
        return count

    @contextlib.contextmanager
    def test_container(self, unit: BuildUnit, results: Path) -> Iterator[TestContainer]:
        """One container kept alive by a shell waiting on its open stdin; tests are execs."""
        container = self.client.containers.create(
            unit.local_tag, entrypoint=["/bin/sh", "-c", "read -r _"], stdin_open=True,
            volumes={str(results): {"bind": RESULTS_MOUNT, "mode": "rw"}},
            network_mode="host")
        try:
            container.start()
            yield _Container(self.client.api, str(container.id))
        finally:
            container.remove(force=True)

    def output_of(self, unit: BuildUnit, command: str) -> str:
        container = self.client.containers.create(unit.local_tag, ["/bin/sh", "-c", command],
                                                  network_mode="host")
        try:
            container.start()
            try:
                result = container.wait(timeout=PROBE_TIMEOUT)
            except requests.exceptions.RequestException:
                container.kill()
                raise ToolError(f"the package probe in {unit.store_ref} timed out after "
                                f"{PROBE_TIMEOUT:.0f}s") from None
            output: bytes = container.logs(stdout=True, stderr=False)
        finally:
            container.remove(force=True)
        if int(result.get("StatusCode", 1)) != 0:
            raise ToolError(f"the package probe failed in {unit.store_ref} "
                            f"(exit {result.get('StatusCode')})")
        return output.decode(errors="replace").strip()


class _Execution:
    """One exec in the container; its output streamed to a file by a thread."""

    def __init__(self, api: Any, exec_id: str, output: Path) -> None:
        self.api = api
        self.exec_id = exec_id
        self.thread = threading.Thread(target=self._drain, args=(output,), daemon=True)
        self.thread.start()

    def _drain(self, output: Path) -> None:
        with output.open("wb") as handle:
            for chunk in self.api.exec_start(self.exec_id, stream=True):
                handle.write(chunk)

    def wait(self, seconds: float) -> int | None:
        self.thread.join(seconds)
        if self.thread.is_alive():
            return None
        code = self.api.exec_inspect(self.exec_id).get("ExitCode")
        return int(code) if code is not None else 1

    def attach(self, runner_pid: int) -> None:
        """The pid is the container's own; the container's end stops what tests left."""

    def stop(self, overdue: bool) -> None:
        """What tests leave running ends with the container (its own pid namespace)."""
        if overdue and self.thread.is_alive():
            pid = int(self.api.exec_inspect(self.exec_id).get("Pid") or 0)
            if pid > 0:
                kill_tree(pid)  # the engine runs here: its exec is a process of this host


class _Container:
    def __init__(self, api: Any, container_id: str) -> None:
        self.api = api
        self.container_id = container_id

    def start(self, argv: list[str], user: str | None, output: Path) -> _Execution:
        exec_id = self.api.exec_create(self.container_id, argv, user=user or "")["Id"]
        return _Execution(self.api, exec_id, output)
