"""A real JupyterHub spawns the notebook image lamina built, with DockerSpawner, all on 127.0.0.1.

The image goes from lamina's store into dockerd with skopeo (no Docker Hub here); the hub and
configurable-http-proxy run as subprocesses; containers use the host network so the hub, the
proxy and the single-user server talk over loopback only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.core.conftest import require_tool
from tests.jupyterhub.conftest import REPO, BuiltNotebook, peer
from tests.publish.conftest import free_port

pytestmark = pytest.mark.slow  # builds the notebook tree: debootstrap + pip, minutes

USER = "alice"

CONFIG = '''\
from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port


class LoopbackDockerSpawner(DockerSpawner):
    """On the host network the server's port is chosen here, and it is reached on loopback."""

    async def start(self):
        self.port = random_port()
        return await super().start()

    async def get_ip_and_port(self):
        return "127.0.0.1", self.port


c = get_config()  # noqa: F821
c.JupyterHub.spawner_class = LoopbackDockerSpawner
c.DockerSpawner.image = {image!r}
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.network_name = "host"
c.DockerSpawner.use_internal_ip = True  # else: "host" network_mode is incompatible with ports
c.DockerSpawner.ip = "127.0.0.1"
c.DockerSpawner.prefix = {prefix!r}
c.DockerSpawner.remove = False  # kept for its logs; the test removes it
c.Spawner.start_timeout = 90
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.load_roles = [{{
    "name": "lamina-test", "services": ["lamina-test"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users"],
}}]
c.JupyterHub.services = [{{"name": "lamina-test", "api_token": {token!r}}}]
'''


@pytest.fixture
def loaded_image(notebook: BuiltNotebook, docker_engine: Any) -> Iterator[str]:
    """The stored singleuser image copied into dockerd under a tag of its own (removed after)."""
    require_tool("skopeo")
    name = f"lamina-test/notebook-singleuser:{notebook.key.removeprefix('sha256:')[:16]}"
    copied = subprocess.run(["skopeo", "copy", "--quiet",
                             f"oci:{notebook.store}:{notebook.store_ref}",
                             f"docker-daemon:{name}"], capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    try:
        yield name
    finally:
        docker_engine.images.remove(name, force=True)


def _wait(what: str, check: Callable[[], Any], seconds: float,
          diagnostics: Callable[[], str]) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except requests.RequestException:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {seconds:.0f} s\n{diagnostics()}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the hub stop its proxy and servers; the session is killed if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # the proxy, in the session the test began
        os.killpg(process.pid, signal.SIGKILL)


def test_hub_spawns_the_lamina_notebook_image_and_its_api_answers(
        notebook: BuiltNotebook, loaded_image: str, docker_engine: Any,
        tmp_path: Path) -> None:
    hub_exe = peer("jupyterhub", REPO / ".venv/bin/jupyterhub")
    chp = peer("configurable-http-proxy",
               REPO / ".tools/chp/node_modules/.bin/configurable-http-proxy")
    token = secrets.token_hex(16)
    prefix = f"lamina-hubtest-{secrets.token_hex(3)}"
    proxy_port, hub_port, api_port = free_port(), free_port(), free_port()
    hub_dir = tmp_path / "hub"
    hub_dir.mkdir()
    (hub_dir / "jupyterhub_config.py").write_text(CONFIG.format(
        image=loaded_image, prefix=prefix, proxy_port=proxy_port, hub_port=hub_port,
        api_port=api_port, chp=str(chp), token=token))
    hub_api = f"http://127.0.0.1:{hub_port}/hub/api"
    auth = {"Authorization": f"token {token}"}
    log_path = hub_dir / "hub.log"

    def diagnostics() -> str:
        lines = [log_path.read_text(errors="replace")[-3000:]]
        for container in docker_engine.containers.list(all=True, filters={"name": prefix}):
            logs = container.logs(tail=30).decode(errors="replace")
            lines.append(f"--- {container.name} ({container.status})\n{logs}")
        return "\n".join(lines)

    with log_path.open("wb") as log:
        hub = subprocess.Popen([str(hub_exe), "-f", "jupyterhub_config.py"], cwd=hub_dir,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def hub_up() -> Any:
            if hub.poll() is not None:
                pytest.fail(f"jupyterhub exited with {hub.returncode}\n{diagnostics()}")
            response = requests.get(hub_api, timeout=2)
            return response.json() if response.status_code == 200 else None

        about = _wait("the hub did not answer", hub_up, 60, diagnostics)
        # The hub and jupyterhub-singleuser in the image are one release (the tree pins it).
        assert about["version"] == notebook.pinned("jupyterhub")

        created = requests.post(f"{hub_api}/users/{USER}", headers=auth, timeout=10)
        assert created.status_code == 201, created.text
        spawn = requests.post(f"{hub_api}/users/{USER}/server", headers=auth, timeout=120)
        assert spawn.status_code in (201, 202), f"{spawn.status_code} {spawn.text}\n" \
                                                 f"{diagnostics()}"

        def ready() -> bool:
            model = requests.get(f"{hub_api}/users/{USER}", headers=auth, timeout=5).json()
            return bool(model["servers"].get("", {}).get("ready"))

        _wait("the single-user server was not ready", ready, 90, diagnostics)

        # Through the proxy, as a JupyterHub user's browser would reach it.
        api = requests.get(f"http://127.0.0.1:{proxy_port}/user/{USER}/api", headers=auth,
                           timeout=10)
        assert api.status_code == 200, api.text
        assert api.json()["version"] == notebook.pinned("jupyter-server")
        # Authenticated endpoints accept the hub's token and refuse an anonymous caller, so
        # the server in the image checks identity with this hub.
        status = requests.get(f"http://127.0.0.1:{proxy_port}/user/{USER}/api/status",
                              headers=auth, timeout=10)
        assert status.status_code == 200, status.text
        anonymous = requests.get(f"http://127.0.0.1:{proxy_port}/user/{USER}/api/status",
                                 timeout=10, allow_redirects=False)
        assert anonymous.status_code == 403

        # The server ran in the image lamina stored, as the image's non-root account.
        (container,) = docker_engine.containers.list(filters={"name": f"{prefix}-{USER}"})
        assert container.attrs["Image"] == notebook.config_digest()
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        code, uid = container.exec_run(["id", "-u"])
        assert (code, uid.decode().strip()) == (0, "1000")

        stopped = requests.delete(f"{hub_api}/users/{USER}/server", headers=auth, timeout=60)
        assert stopped.status_code in (202, 204), stopped.text
        _wait("the server did not stop", lambda: not ready(), 30, diagnostics)
    finally:
        _stop(hub)
        for container in docker_engine.containers.list(all=True, filters={"name": prefix}):
            container.remove(force=True)
