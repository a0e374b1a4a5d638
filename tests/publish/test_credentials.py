"""Credentials are bound to one host:port: the store's sources, the private auth file skopeo
gets, targets with userinfo refused, and ``lamina unpack`` of another registry getting
nothing of the target's password (the real docker-registry's log says who authenticated)."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.credentials import CredentialStore
from lamina.errors import UsageError
from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry
from tests.unpack.oci import f, gz, single, tar_bytes

Lamina = Callable[..., CliResult]
SECRET = "pa55:w/rd@s3cret"
HINT = "use LAMINA_REGISTRY_USERNAME/PASSWORD, the CI variables or --authfile"


def auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """An environment with only a home directory (its auth files) and ``extra``."""
    return {"HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), **extra}


# -- the store ---------------------------------------------------------------------------

def test_lamina_variables_are_bound_to_the_commands_target_only(tmp_path: Path) -> None:
    env = env_for(tmp_path, LAMINA_REGISTRY_USERNAME="ci", LAMINA_REGISTRY_PASSWORD=SECRET)
    store = CredentialStore.load(targets=["Registry.Example:5000"], env=env)
    found = store.for_host("registry.example:5000", "hep/app")
    assert found is not None and (found.username, found.password) == ("ci", SECRET)
    for other in ("registry.example", "registry.example:5001", "other.example:5000"):
        assert store.for_host(other, "hep/app") is None
    assert CredentialStore.load(targets=[], env=env).bindings == []  # never "any host"

    with pytest.raises(UsageError) as caught:
        CredentialStore.load(targets=["a.example", "b.example:5000"], env=env)
    assert caught.value.message == (
        "LAMINA_REGISTRY_USERNAME/PASSWORD are for one registry, but the targets are on "
        "a.example, b.example:5000: set LAMINA_REGISTRY_HOST to the one they are for (and "
        "give the others in an auth file)")
    chosen = CredentialStore.load(targets=["a.example", "b.example:5000"],
                                  env={**env, "LAMINA_REGISTRY_HOST": "b.example:5000"})
    assert chosen.for_host("b.example:5000") is not None
    assert chosen.for_host("a.example") is None


def test_gitlab_ci_variables_are_bound_to_the_registry_and_the_jwt_realm(
        tmp_path: Path) -> None:
    env = env_for(tmp_path, CI_REGISTRY="gitlab.example.org:5050",
                  CI_SERVER_URL="https://gitlab.example.org", CI_JOB_TOKEN="job-" + SECRET)
    store = CredentialStore.load(env=env)
    for host in ("gitlab.example.org:5050", "gitlab.example.org"):
        found = store.for_host(host)
        assert found is not None and found.username == "gitlab-ci-token"
    assert store.for_host("registry.elsewhere.org") is None
    ipv6 = CredentialStore.load(env=env_for(tmp_path, CI_REGISTRY="[::1]:5000",
                                            CI_SERVER_URL="http://[::1]:8080",
                                            CI_JOB_TOKEN="t0ken-value"))
    assert ipv6.for_host("[::1]:5000") and ipv6.for_host("[::1]:8080")
    assert ipv6.for_host("[::1]:5001") is None


def test_auth_file_entries_are_bound_to_their_keys(tmp_path: Path) -> None:
    """containers/image pkg/docker/config/config.go: exact keys (most specific namespace
    first), then URL keys normalised to their host; the first file holding one wins."""
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({"auths": {
        "https://legacy.example/v1/": auth("old", "from-url-key"),
        "team.example/hep": auth("hep", "scoped"),
        "team.example": auth("all", "whole-host"),
        "http://[::1]:5000": auth("six", "ipv6"),
    }}))
    (tmp_path / ".dockercfg").write_text(json.dumps({
        "https://legacy-only.example/v1/": auth("cfg", "legacy-format")}))
    (tmp_path / "run" / "containers").mkdir(parents=True)
    (tmp_path / "run" / "containers" / "auth.json").write_text(json.dumps({"auths": {
        "team.example/hep/ml": auth("ml", "first-file")}}))
    store = CredentialStore.load(env=env_for(tmp_path))

    def who(host: str, repository: str | None = None) -> str | None:
        found = store.for_host(host, repository)
        return found.password if found else None

    assert who("legacy.example", "x/y") == "from-url-key"
    assert who("team.example", "hep/app") == "scoped"
    assert who("team.example", "hep") == "scoped"
    assert who("team.example", "hepx/app") == "whole-host"
    assert who("team.example", "hep/ml") == "first-file"  # XDG_RUNTIME_DIR's file first
    assert who("[::1]:5000") == "ipv6"
    assert who("legacy-only.example") == "legacy-format"
    assert who("team.example:5000") is None and who("legacy.example:443") is None

    # an explicit --authfile (or REGISTRY_AUTH_FILE) is the only file read, as in skopeo
    explicit = tmp_path / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"only.example": auth("x", "explicit")}}))
    alone = CredentialStore.load(env=env_for(tmp_path), authfile=explicit)
    assert alone.for_host("only.example").password == "explicit"  # type: ignore[union-attr]
    assert alone.for_host("team.example", "hep/app") is None
    explicit.write_text("not json")
    with pytest.raises(UsageError, match="not a containers auth file"):
        CredentialStore.load(env=env_for(tmp_path), authfile=explicit)


def test_skopeo_gets_a_private_file_with_only_the_entry_it_needs(tmp_path: Path) -> None:
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps({
        "auths": {"reg.example": auth("ci", SECRET), "other.example": auth("o", "other-pw")},
        "credHelpers": {"helped.example": "ecr-login"}}))
    store = CredentialStore.load(env=env_for(tmp_path))
    with store.skopeo_authfile("reg.example", "hep/app") as path:
        mode = stat.S_IMODE(path.stat().st_mode)
        document = json.loads(path.read_text())
    assert mode == 0o600
    assert document == {"auths": {"reg.example/hep/app": auth("ci", SECRET)}}
    assert not path.exists() and not path.parent.exists()
    with store.skopeo_authfile("unknown.example", "hep/app") as path:
        assert json.loads(path.read_text()) == {"auths": {}}
    with store.skopeo_authfile("helped.example", "hep/app") as path:
        assert json.loads(path.read_text()) == {"auths": {},
                                                "credHelpers": {"helped.example": "ecr-login"}}


# -- targets carrying credentials ----------------------------------------------------------

REFUSED = (f"lamina: error: target '<redacted>@127.0.0.1:5000/hep': credentials in a target "
           f"are not accepted; {HINT}\n")


@pytest.mark.parametrize("command", [
    ["publish", "--tag", "v1", "--to"],
    ["build", "--push", "--tag", "v1", "--to"],
    ["plan", "--against"],
    ["ci", "gitlab", "--target"],
])
@pytest.mark.parametrize("userinfo", [f"ci:{SECRET}", "ci", f"ci:{SECRET}@again"])
def test_a_target_with_credentials_is_refused_without_echoing_them(
        lamina: Lamina, tree: Callable[[str], Path], command: list[str],
        userinfo: str) -> None:
    root = tree("tiny")
    result = lamina("-C", str(root), *command, f"{userinfo}@127.0.0.1:5000/hep")
    assert result.code == 2
    assert result.err == REFUSED
    assert "pa55" not in result.out + result.err and "s3cret" not in result.out + result.err


def test_a_recipe_target_with_credentials_is_a_located_recipe_error(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    recipe = root / "recipe.yaml"
    lines = recipe.read_text().splitlines()
    recipe.write_text("\n".join([*lines, "targets:", f"  - registry: 'ci:{SECRET}@127.0.0.1:5000'",
                                 "    namespace: hep", ""]))
    for command in (["publish", "--tag", "v1"], ["build", "--push", "--tag", "v1"]):
        result = lamina("-C", str(root), *command)
        assert result.code == 2
        assert result.err == (f"lamina: error: {recipe}:{len(lines) + 2}: targets[0].registry: "
                              f"{REFUSED.removeprefix('lamina: error: ')}")
    doctor = lamina("-C", str(root), "doctor", "--json")
    [check] = [c for c in doctor.json() if c["check"].startswith("registry")]
    assert check == {"check": "registry <redacted>@127.0.0.1:5000", "ok": False,
                     "detail": "credentials in a target are not accepted", "fix": HINT}
    assert "pa55" not in doctor.out + doctor.err and "s3cret" not in doctor.out + doctor.err


def test_an_image_reference_with_credentials_is_refused(lamina: Lamina, tmp_path: Path
                                                        ) -> None:
    result = lamina("unpack", f"docker://ci:{SECRET}@127.0.0.1:5000/hep/x:1",
                    str(tmp_path / "out"), "--store", str(tmp_path / "store"))
    assert result.code == 2
    assert result.err == ("lamina: error: image reference '<redacted>@127.0.0.1:5000/hep/x:1': "
                          f"credentials in an image reference are not accepted; {HINT}\n")


# -- unpack of another registry ------------------------------------------------------------

def authorized(registry: TlsRegistry) -> int:
    """Requests the registry authenticated (distribution logs 'authorized request')."""
    return registry.access_log.read_text(errors="replace").count('msg="authorized request"')


def test_unpack_of_another_registry_gets_none_of_the_targets_credentials(
        lamina: Lamina, tls_registry: TlsRegistry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("skopeo")
    layout = tmp_path / "layout"
    single(layout, [gz(tar_bytes([f("etc/motd", "private\n")]))])
    reference = f"docker://{tls_registry.host}/hep/private:1"
    subprocess.run(["skopeo", "copy", "--dest-cert-dir", str(tls_registry.cert_dir),
                    "--dest-authfile", str(tls_registry.authfile), f"oci:{layout}:test",
                    reference], check=True, capture_output=True, timeout=120)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    monkeypatch.delenv("LAMINA_REGISTRY_HOST", raising=False)
    # the password of this very registry, but given for the project's target elsewhere
    monkeypatch.setenv("LAMINA_REGISTRY_USERNAME", tls_registry.username)
    monkeypatch.setenv("LAMINA_REGISTRY_PASSWORD", tls_registry.password)
    monkeypatch.setenv("LAMINA_TARGET", "127.0.0.1:1/hep")
    before = authorized(tls_registry)
    args = ["unpack", reference, str(tmp_path / "out"), "--store", str(tmp_path / "store"),
            "--src-cert-dir", str(tls_registry.cert_dir)]
    denied = lamina(*args)
    assert denied.code == 1, denied.err
    assert denied.err.startswith(f"lamina: error: copying {reference} failed")
    assert tls_registry.password not in denied.out + denied.err
    assert authorized(tls_registry) == before  # skopeo never authenticated to it

    # bound to this registry (its host is the project's target), the same pull is allowed
    monkeypatch.setenv("LAMINA_TARGET", f"{tls_registry.host}/hep")
    allowed = lamina(*args)
    assert allowed.code == 0, allowed.err
    assert authorized(tls_registry) > before
