"""The docker backend gives the same plan, keys, labels and outputs as buildah."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamina.builders.docker import stream_errors
from tests.core.conftest import CliResult
from tests.publish.conftest import TlsRegistry


def stored_keys(root: Path) -> dict[str, str]:
    store = root / ".lamina/store"
    out = {}
    for desc in json.loads((store / "index.json").read_text())["manifests"]:
        manifest = json.loads((store / "blobs" / desc["digest"].replace(":", "/")).read_text())
        out[desc["annotations"]["org.opencontainers.image.ref.name"]] = \
            manifest["annotations"]["dev.lamina.key"]
    return out


def test_docker_backend_builds_with_the_same_keys_and_publishes(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path], docker_engine: Any,
        tls_registry: TlsRegistry, tmp_path: Path) -> None:
    by_docker = tree("tiny")
    result = lamina("-C", str(by_docker), "build", "--builder", "docker", "--json")
    assert result.code == 0, result.out + result.err
    rows = result.json()
    assert {r["outcome"] for r in rows} == {"built"}
    assert all(t["passed"] for r in rows for t in r["tests"])

    by_buildah = tmp_path / "buildah-copy"
    subprocess.run(["cp", "-r", str(by_docker), str(by_buildah)], check=True)
    subprocess.run(["rm", "-rf", str(by_buildah / ".lamina")], check=True)
    assert lamina("-C", str(by_buildah), "build").code == 0
    assert stored_keys(by_docker) == stored_keys(by_buildah)
    plan = lamina("-C", str(by_docker), "plan", "--json").json()
    assert {e["status"] for e in plan} == {"up-to-date"}

    config = json.loads(subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{by_docker}/.lamina/store:leaf-amd64"],
        check=True, capture_output=True, text=True).stdout)
    assert config["config"]["Labels"]["dev.lamina.image"] == "leaf"
    assert config["config"]["WorkingDir"] == "/opt/hello"

    published = lamina("-C", str(by_docker), "publish", "leaf", "--to",
                       f"{tls_registry.host}/dock", "--tag", "v1", "--cert-dir",
                       str(tls_registry.cert_dir), "--authfile", str(tls_registry.authfile))
    assert published.code == 0, published.out + published.err
    child = tls_registry.get("/v2/dock/leaf/manifests/v1-amd64",
                             "application/vnd.oci.image.manifest.v1+json").json()
    assert child["annotations"]["dev.lamina.key"] == stored_keys(by_buildah)["leaf-amd64"]


def test_errors_inside_engine_response_streams_are_detected(docker_engine: Any,
                                                            tmp_path: Path) -> None:
    # A push to a registry that is not there answers 200 with the error inside the stream.
    pushed = docker_engine.api.push("127.0.0.1:9/lamina/none", tag="x", stream=True,
                                    decode=True)
    assert stream_errors(pushed)
    assert stream_errors([b'{"status":"ok"}\n']) == []
