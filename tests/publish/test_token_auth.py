"""GitLab registry auth: the Bearer token flow from CI variables, against a real registry.

As on GitLab, the token realm is on another host:port than the registry (GitLab itself,
``<CI_SERVER_URL>/jwt/auth``): the CI variables are bound to CI_REGISTRY and to the host of
CI_SERVER_URL, and without that binding the realm is asked anonymously."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import free_port
from tests.publish.token_server import ISSUER, SERVICE, TokenServer

JOB_TOKEN = "job-token-7f3a9c1e55d0"


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[tuple[str, TokenServer]]:
    require_tool("docker-registry")
    tokens = TokenServer(tmp_path, "gitlab-ci-token", JOB_TOKEN)
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(json.dumps({
        "version": 0.1,
        "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "lamina-test"},
        "auth": {"token": {"realm": tokens.realm, "service": SERVICE, "issuer": ISSUER,
                           "rootcertbundle": str(tokens.cert_file)}},
    }))
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                               stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"http://{host}/v2/", timeout=2)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("token-auth docker-registry did not start")
            time.sleep(0.2)
    yield host, tokens
    process.terminate()
    process.wait(timeout=10)
    tokens.close()
    log.close()


def test_publish_with_ci_job_token_through_jwt_auth(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        token_registry: tuple[str, TokenServer], monkeypatch: pytest.MonkeyPatch) -> None:
    host, tokens = token_registry
    challenge = requests.get(f"http://{host}/v2/", timeout=5)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith(f'Bearer realm="{tokens.realm}"')
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("[linux/amd64]", "[linux/amd64, linux/arm64]"))
    assert lamina("-C", str(root), "build", "base").code == 0
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("CI_REGISTRY", host)
    monkeypatch.setenv("CI_JOB_TOKEN", JOB_TOKEN)
    monkeypatch.delenv("CI_SERVER_URL", raising=False)

    # the realm's host is not bound to the job token: it is asked anonymously, and refuses
    unbound = lamina("-C", str(root), "publish", "base", "--to", f"{host}/group/project",
                     "--tag", "v1", "--insecure-loopback")
    assert unbound.code == 1
    assert unbound.err == (f"lamina: error: {host}: the token service refused an anonymous "
                           "token request (401)\n")
    assert tokens.authorizations and set(tokens.authorizations) == {""}

    monkeypatch.setenv("CI_SERVER_URL", tokens.server_url)  # what GitLab gives the job
    tokens.authorizations.clear()
    result = lamina("-C", str(root), "publish", "base", "--to", f"{host}/group/project",
                    "--tag", "v1", "--insecure-loopback", "--json")
    assert result.code == 0, result.out + result.err
    assert JOB_TOKEN not in result.out + result.err
    assert tokens.authorizations and all(a.startswith("Basic ") for a in tokens.authorizations)
    assert any("scope=repository%3Agroup%2Fproject%2Fbase%3A" in q or
               "repository:group/project/base:" in q for q in tokens.requests), tokens.requests
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                          f"gitlab-ci-token:{JOB_TOKEN}",
                          f"docker://{host}/group/project/base:v1"],
                         check=True, capture_output=True, text=True).stdout
    index = json.loads(raw)
    assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == [
        "amd64", "arm64"]
    for arch in ("amd64", "arm64"):
        subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                        f"gitlab-ci-token:{JOB_TOKEN}",
                        f"docker://{host}/group/project/base:v1-{arch}"],
                       check=True, capture_output=True)
    monkeypatch.setenv("CI_JOB_TOKEN", "wrong-token-value")
    denied = lamina("-C", str(root), "publish", "base", "--to", f"{host}/group/project",
                    "--tag", "v2", "--insecure-loopback")
    assert denied.code == 1 and "wrong-token-value" not in denied.out + denied.err
    assert denied.err == (f"lamina: error: {host}: the token service refused the credentials "
                          "(401)\n")
