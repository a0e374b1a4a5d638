"""The Harbor client and ``lamina harbor`` against a fake Harbor that follows the real API."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from lamina import redact
from lamina.errors import RegistryError, UsageError
from lamina.harbor import HarborClient, encode_repository, parse_reference
from lamina.harbor.transport import MAX_PAGES
from tests.core.conftest import CliResult
from tests.harbor.conftest import ADMIN, PASSWORD
from tests.harbor.fake_harbor import FakeHarbor

Lamina = Callable[..., CliResult]


def basic_user(header: str) -> str:
    return base64.b64decode(header.split(" ", 1)[1]).decode()


# ---------------------------------------------------------------------- projects


def test_ensure_project_creates_once_then_changes_nothing(harbor: FakeHarbor,
                                                          client: HarborClient) -> None:
    first = client.ensure_project("hep", metadata={"auto_scan": True})
    second = client.ensure_project("hep", metadata={"auto_scan": True})
    assert (first.action, second.action) == ("created", "unchanged")
    assert first.id == second.id and not first.public
    assert harbor.projects["hep"]["metadata"] == {"public": "false", "auto_scan": "true"}
    assert len(harbor.calls("POST", "/projects")) == 1
    assert not harbor.calls("PUT")


def test_ensure_project_brings_metadata_in_line(harbor: FakeHarbor,
                                                client: HarborClient) -> None:
    harbor.add_project("hep")
    result = client.ensure_project("hep", public=True)
    assert result.action == "updated" and result.public
    assert harbor.projects["hep"]["metadata"]["public"] == "true"
    (put,) = harbor.calls("PUT", "/projects/hep")
    assert put.body == {"metadata": {"public": "true"}}
    assert put.headers["x-is-resource-name"] == "true"


def test_ensure_project_accepts_409_from_a_concurrent_creator(harbor: FakeHarbor,
                                                              client: HarborClient) -> None:
    harbor.add_project("hep")
    # the HEAD lookup loses a race with another creator: Harbor then answers POST with 409
    harbor.inject("HEAD", r"^/api/v2.0/projects$", 404, "NOT_FOUND", "project hep not found")
    result = client.ensure_project("hep")
    assert result.action == "unchanged"
    assert [r.status for r in harbor.calls("POST", "/projects")] == [409]


# ---------------------------------------------------------------------- cookies / CSRF


def test_client_never_sends_harbors_session_cookie(harbor: FakeHarbor,
                                                   client: HarborClient) -> None:
    client.ensure_project("hep")
    client.set_immutable_rule("hep", "v*")
    client.set_retention("hep", 5)
    assert [r.status for r in harbor.requests if r.status >= 400] == [404]  # HEAD: new
    assert all("cookie" not in r.headers for r in harbor.requests)
    assert len(client.session.cookies) == 0


def test_fake_enforces_csrf_on_a_cookie_keeping_session(harbor: FakeHarbor) -> None:
    """The control for the test above: a default requests.Session keeps ``sid`` and is
    refused, as the real Harbor refuses it (harbor#12455)."""
    session = requests.Session()
    session.auth = (ADMIN, PASSWORD)
    session.head(f"{harbor.url}/api/v2.0/projects", params={"project_name": "x"})
    resp = session.post(f"{harbor.url}/api/v2.0/projects", json={"project_name": "x"})
    assert resp.status_code == 403
    assert resp.json() == {"errors": [{"code": "FORBIDDEN", "message": "CSRF token invalid"}]}


def test_403_csrf_answer_is_one_line_with_the_reason(client: HarborClient) -> None:
    with pytest.raises(RegistryError) as err:
        client.request("create project 'x'", "POST", "/projects",
                       body={"project_name": "x"}, ok=(201,), headers={"Cookie": "sid=abc"})
    text = str(err.value)
    assert "403" in text and "FORBIDDEN: CSRF token invalid" in text
    assert "must not keep cookies" in text and "\n" not in text


# ---------------------------------------------------------------------- robots


def test_create_robot_returns_full_name_and_registered_secret(harbor: FakeHarbor,
                                                              client: HarborClient) -> None:
    harbor.add_project("hep")
    robot = client.create_robot("hep", "ci", duration_days=30)
    assert robot.name == "robot$hep+ci" and robot.action == "created"
    assert robot.secret and robot.secret not in repr(robot)
    assert redact.redact(f"token {robot.secret}") == "token ***"
    (post,) = harbor.calls("POST", "/robots")
    assert post.body["level"] == "project" and post.body["duration"] == 30
    assert post.body["permissions"] == [{"kind": "project", "namespace": "hep", "access": [
        {"resource": "repository", "action": "push"},
        {"resource": "repository", "action": "pull"}]}]


def test_robot_dollar_name_authenticates_verbatim(harbor: FakeHarbor,
                                                  client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "base", "1.0", vulnerabilities={"High": 1})
    robot = client.create_robot("hep", "ci", access=[("repository", "pull"),
                                                     ("scan", "create")])
    as_robot = HarborClient(harbor.url, robot.name, robot.secret)
    summary = as_robot.scan("hep", "base", "1.0", interval=0)
    assert summary.counts == {"High": 1}
    last = harbor.requests[-1]
    assert basic_user(last.headers["authorization"]) == f"robot$hep+ci:{robot.secret}"
    # and what the robot may not do, Harbor refuses with 403
    with pytest.raises(RegistryError, match=r"403 .*FORBIDDEN: forbidden .*lacks this perm"):
        as_robot.ensure_project("other")


def test_existing_robot_is_refused_clearly_without_rotating(harbor: FakeHarbor,
                                                            client: HarborClient) -> None:
    harbor.add_project("hep")
    first = client.create_robot("hep", "ci")
    with pytest.raises(RegistryError) as err:
        client.create_robot("hep", "ci")
    text = str(err.value)
    assert "'hep+ci' already exists" in text and "--refresh-robot-secret" in text
    assert first.secret not in text
    assert not harbor.calls("PATCH")


def test_refresh_finds_the_robot_across_pages_and_rotates_its_secret(
        harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    for name in ("a1", "a2", "a3", "a4"):
        client.create_robot("hep", name)
    old = client.create_robot("hep", "ci")
    new = client.create_robot("hep", "ci", refresh_if_exists=True)
    assert (new.action, new.name, new.id) == ("refreshed", "robot$hep+ci", old.id)
    assert new.secret != old.secret
    pages = [r.query["page"] for r in harbor.calls("GET", "/robots")]
    assert pages == [["1"], ["2"], ["3"]]  # five robots, two a page, ours is the last
    with pytest.raises(RegistryError, match="401"):
        HarborClient(harbor.url, old.name, old.secret).scan_overview("hep", "x", "1")


def test_paging_that_repeats_a_page_stops_with_one_line(harbor: FakeHarbor,
                                                        client: HarborClient) -> None:
    harbor.add_project("hep")
    for name in ("a1", "a2", "ci"):
        client.create_robot("hep", name)
    harbor.paging_fault = "repeat"  # page 2 is page 1 again, and "next" never ends
    with pytest.raises(RegistryError) as caught:
        client.create_robot("hep", "ci", refresh_if_exists=True)
    assert caught.value.message == ("Harbor list robots of project 'hep': page 2 repeats "
                                    "page 1; Harbor's paging does not advance")
    assert [r.query["page"] for r in harbor.calls("GET", "/robots")] == [["1"], ["2"]]


def test_paging_that_never_ends_is_bounded(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    client.create_robot("hep", "ci")
    harbor.paging_fault = "endless"  # a new page every time, always with rel="next"
    with pytest.raises(RegistryError) as caught:
        client.create_robot("hep", "ci", refresh_if_exists=True)
    assert caught.value.message == (f"Harbor list robots of project 'hep': more than "
                                    f"{MAX_PAGES} pages of 2; refusing to read further")
    assert len(harbor.calls("GET", "/robots")) == MAX_PAGES


# ---------------------------------------------------------------------- immutability


def test_immutable_rule_created_once(harbor: FakeHarbor, client: HarborClient) -> None:
    project = harbor.add_project("hep")
    assert client.set_immutable_rule("hep", "v*").action == "created"
    assert client.set_immutable_rule("hep", "v*").action == "unchanged"
    (rule,) = harbor.immutable[project["project_id"]]
    assert rule["tag_selectors"] == [{"kind": "doublestar", "decoration": "matches",
                                      "pattern": "v*"}]
    assert rule["scope_selectors"]["repository"][0]["pattern"] == "**"
    assert rule["action"] == "immutable" and rule["template"] == "immutable_template"


def test_immutable_rule_found_on_a_later_page_is_not_duplicated(
        harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    for pattern in ("a*", "b*", "c*", "d*", "v*"):
        client.set_immutable_rule("hep", pattern)
    before = len(harbor.calls("POST", "immutabletagrules"))
    assert client.set_immutable_rule("hep", "v*").action == "unchanged"
    assert len(harbor.calls("POST", "immutabletagrules")) == before
    lists = harbor.calls("GET", "immutabletagrules")[-3:]
    assert [r.query["page"] for r in lists] == [["1"], ["2"], ["3"]]


def test_disabled_immutable_rule_is_enabled(harbor: FakeHarbor, client: HarborClient) -> None:
    project = harbor.add_project("hep")
    client.set_immutable_rule("hep", "v*")
    harbor.immutable[project["project_id"]][0]["disabled"] = True
    assert client.set_immutable_rule("hep", "v*").action == "enabled"
    assert harbor.immutable[project["project_id"]][0]["disabled"] is False


# ---------------------------------------------------------------------- retention


def test_retention_created_in_project_metadata_then_unchanged(
        harbor: FakeHarbor, client: HarborClient) -> None:
    project = harbor.add_project("hep")
    created = client.set_retention("hep", 10, "v*")
    assert created.action == "created"
    assert project["metadata"]["retention_id"] == str(created.id)
    policy = harbor.retentions[created.id]
    assert policy["scope"] == {"level": "project", "ref": project["project_id"]}
    assert policy["trigger"]["settings"]["cron"] == "0 0 0 * * *"
    (rule,) = policy["rules"]
    assert rule["template"] == "latestPushedK" and rule["params"] == {"latestPushedK": 10}
    assert rule["tag_selectors"][0]["extras"] == '{"untagged":false}'
    assert client.set_retention("hep", 10, "v*").action == "unchanged"
    assert len(harbor.calls("POST", "/retentions")) == 1


def test_retention_updates_our_rule_and_keeps_others(harbor: FakeHarbor,
                                                     client: HarborClient) -> None:
    harbor.add_project("hep")
    rid = client.set_retention("hep", 10, "v*").id
    other = client.set_retention("hep", 3, "dev-*")
    assert other.action == "updated" and other.id == rid
    changed = client.set_retention("hep", 20, "v*")
    assert changed.action == "updated"
    rules = harbor.retentions[rid]["rules"]
    assert [(r["tag_selectors"][0]["pattern"], r["params"]["latestPushedK"]) for r in rules] \
        == [("v*", 20), ("dev-*", 3)]
    assert len(harbor.calls("POST", "/retentions")) == 1


# ---------------------------------------------------------------------- scans


def test_scan_polls_until_success_and_summarizes(harbor: FakeHarbor,
                                                 client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "ml/torch", "2.4", fixable=2,
                        vulnerabilities={"Critical": 1, "High": 2, "Low": 4})
    sleeps: list[float] = []
    summary = client.scan("hep", "ml/torch", "2.4", interval=1.5, sleep=sleeps.append)
    assert (summary.status, summary.severity, summary.total, summary.fixable) == \
        ("Success", "Critical", 7, 2)
    assert summary.counts == {"Critical": 1, "High": 2, "Low": 4}
    assert summary.scanner == "Trivy v0.58.1" and summary.at_least("High") == 3
    assert sleeps == [1.5, 1.5]  # Pending, Running, then Success
    (post,) = harbor.calls("POST", "/scan")
    assert "/repositories/ml%252Ftorch/artifacts/2.4/scan" in post.raw_path
    assert post.status == 202


def test_scan_by_digest(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    art = harbor.add_artifact("hep", "base", "1.0")
    summary = client.scan("hep", "base", art.digest, interval=0)
    assert summary.reference == f"hep/base@{art.digest}" and summary.digest == art.digest
    assert summary.severity == "None" and summary.total == 0


def test_scan_gives_up_after_its_timeout(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "base", "1.0")
    harbor.scan_steps = ["Running"] * 10_000
    with pytest.raises(RegistryError, match=r"not finished after 0s \(status Running\)"):
        client.scan("hep", "base", "1.0", timeout=0.2, interval=0.01)


def test_scan_ending_in_error_is_an_error(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "base", "1.0")
    harbor.scan_final = "Error"
    with pytest.raises(RegistryError, match=r"hep/base:1\.0: scan ended with status Error"):
        client.scan("hep", "base", "1.0", interval=0)


def test_repository_names_are_encoded_twice(harbor: FakeHarbor) -> None:
    assert encode_repository("a/b") == "a%252Fb"
    assert encode_repository("a/b/c") == "a%252Fb%252Fc"
    harbor.add_project("hep")
    harbor.add_artifact("hep", "a/b", "1")
    base = f"{harbor.url}/api/v2.0/projects/hep/repositories"
    auth = (ADMIN, PASSWORD)
    once = requests.get(f"{base}/a%2Fb/artifacts/1", auth=auth)
    twice = requests.get(f"{base}/a%252Fb/artifacts/1", auth=auth)
    assert once.status_code == 404 and "was not found" in once.json()["errors"][0]["message"]
    assert twice.status_code == 200


# ---------------------------------------------------------------------- error answers


def test_401_bad_credentials(harbor: FakeHarbor) -> None:
    bad = HarborClient(harbor.url, ADMIN, "wrong-password-123")
    with pytest.raises(RegistryError) as err:
        bad.ensure_project("hep")
    text = str(err.value)
    # HEAD answers carry no body, so only the status and the hint
    assert text.startswith("Harbor look up project 'hep': 401 Unauthorized (check")
    assert "LAMINA_HARBOR_PASSWORD" in text and "wrong-password-123" not in text
    with pytest.raises(RegistryError) as err:
        bad.get_project("hep")
    assert "401 Unauthorized: UNAUTHORIZED: unauthorized (check" in str(err.value)


def test_404_unknown_artifact_and_project(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    with pytest.raises(RegistryError, match=r"scan hep/nope:1: 404 .*artifact hep/nope:1 not f"):
        client.scan("hep", "nope", "1")
    with pytest.raises(RegistryError, match=r"get project 'ghost': 404 .*project ghost not f"):
        client.get_project("ghost")


def test_409_duplicate_immutable_rule_is_reported(harbor: FakeHarbor,
                                                  client: HarborClient) -> None:
    harbor.add_project("hep")
    body = {"action": "immutable", "template": "immutable_template", "tag_selectors": []}
    client.request("x", "POST", "/projects/hep/immutabletagrules", body=body, ok=(201,))
    with pytest.raises(RegistryError,
                       match=r"^Harbor add rule: 409 Conflict: CONFLICT: immutable rule already"):
        client.request("add rule", "POST", "/projects/hep/immutabletagrules", body=body,
                       ok=(201,))


def test_412_precondition(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "base", "1.0")
    harbor.inject("POST", r"/scan$", 412, "PRECONDITION", "the project policy forbids it")
    with pytest.raises(RegistryError) as err:
        client.scan("hep", "base", "1.0")
    assert str(err.value) == ("Harbor scan hep/base:1.0: 412 Precondition Failed: "
                              "PRECONDITION: the project policy forbids it (a Harbor policy "
                              "forbids this (e.g. an immutable tag))")


def test_422_unscannable_artifact_and_invalid_body(harbor: FakeHarbor,
                                                   client: HarborClient) -> None:
    harbor.add_project("hep")
    harbor.add_artifact("hep", "chart", "1.0", scannable=False)
    with pytest.raises(RegistryError, match=r"422 .*UNPROCESSABLE_ENTITY: artifact .* is not "
                                            r"scannable"):
        client.scan("hep", "chart", "1.0")
    with pytest.raises(RegistryError, match="at most 255 chars"):
        client.ensure_project("x" * 256)


def test_5xx_is_one_line(harbor: FakeHarbor, client: HarborClient) -> None:
    harbor.inject("GET", "/projects/hep", 500, "UNKNOWN", "internal server error")
    with pytest.raises(RegistryError) as err:
        client.get_project("hep")
    assert str(err.value) == ("Harbor get project 'hep': 500 Internal Server Error: "
                              "UNKNOWN: internal server error")


def test_secrets_echoed_by_harbor_are_redacted(harbor: FakeHarbor,
                                               client: HarborClient) -> None:
    harbor.add_project("hep")
    robot = client.create_robot("hep", "ci")
    harbor.inject("POST", "/projects", 400, "BAD_REQUEST",
                  f"bad input {robot.secret} for {PASSWORD}\nsecond line")
    with pytest.raises(RegistryError) as err:
        client.request("create project", "POST", "/projects", body={}, ok=(201,))
    text = str(err.value)
    assert robot.secret not in text and PASSWORD not in text
    assert "bad input *** for *** second line" in text


def test_unreachable_harbor(harbor: FakeHarbor) -> None:
    url = harbor.url
    harbor.stop()
    with pytest.raises(RegistryError, match=r"cannot reach http://127\.0\.0\.1:\d+ \(Conn"):
        HarborClient(url, ADMIN, PASSWORD).ensure_project("hep")


def test_bad_urls_and_missing_credentials() -> None:
    with pytest.raises(UsageError, match="must not contain credentials"):
        HarborClient("https://u:p@harbor.example.org", ADMIN, PASSWORD)
    with pytest.raises(UsageError, match="must look like"):
        HarborClient("harbor.example.org", ADMIN, PASSWORD)
    with pytest.raises(UsageError, match="LAMINA_HARBOR_PASSWORD"):
        HarborClient("https://harbor.example.org", ADMIN, "")


def test_parse_reference() -> None:
    url = "https://harbor.example.org"
    assert parse_reference("hep/ml/torch:2.4", url) == ("hep", "ml/torch", "2.4")
    assert parse_reference("harbor.example.org/hep/base@sha256:ab", url) == \
        ("hep", "base", "sha256:ab")
    for bad in ("hep/base", "base:1", "hep/:1"):
        with pytest.raises(UsageError) as caught:
            parse_reference(bad, url)
        assert str(caught.value) == (f"'{bad}': expected PROJECT/REPOSITORY:TAG or "
                                     "PROJECT/REPOSITORY@sha256:DIGEST")
        assert caught.value.exit_code == 2


# ---------------------------------------------------------------------- the CLI


def test_cli_bootstrap_then_rerun_is_idempotent(harbor_env: FakeHarbor, lamina: Lamina) -> None:
    args = ("harbor", "bootstrap", "--project", "hep", "--robot", "ci", "--immutable", "v*",
            "--keep", "10")
    first = lamina(*args)
    assert first.code == 0, first.err
    secret = harbor_env.robots[max(harbor_env.robots)]["secret"]
    for what, result in (("project", "created"), ("robot", "created"),
                         ("immutable tags", "created"), ("retention", "created")):
        assert any(what in line and result in line for line in first.out.splitlines())
    assert first.out.count(secret) == 1 and f"robot secret: {secret}" in first.out
    assert "only once" in first.err and secret not in first.err
    again = lamina("harbor", "bootstrap", "--project", "hep", "--immutable", "v*", "--keep",
                   "10")
    assert again.code == 0 and "created" not in again.out and again.out.count("unchanged") == 3


def test_cli_robot_secret_file_is_private(harbor_env: FakeHarbor, lamina: Lamina,
                                          tmp_path: Path) -> None:
    target = tmp_path / "robot.secret"
    result = lamina("harbor", "bootstrap", "--project", "hep", "--robot", "ci",
                    "--robot-secret-file", str(target), "--json")
    assert result.code == 0, result.err
    secret = harbor_env.robots[max(harbor_env.robots)]["secret"]
    assert target.read_text() == secret + "\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert secret not in result.out + result.err
    data = result.json()
    assert data["robot"] == {"name": "robot$hep+ci", "expires_at": -1,
                             "secret_file": str(target)}


def test_cli_existing_robot_is_one_line_exit_1(harbor_env: FakeHarbor, lamina: Lamina) -> None:
    assert lamina("harbor", "bootstrap", "--project", "hep", "--robot", "ci").code == 0
    result = lamina("harbor", "bootstrap", "--project", "hep", "--robot", "ci")
    assert result.code == 1
    assert result.err.startswith("lamina: error: Harbor create robot 'ci' in project 'hep'")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    rotated = lamina("harbor", "bootstrap", "--project", "hep", "--robot", "ci",
                     "--refresh-robot-secret")
    assert rotated.code == 0 and "refreshed" in rotated.out


def test_cli_bad_password_is_one_line_exit_1(harbor_env: FakeHarbor, lamina: Lamina,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMINA_HARBOR_PASSWORD", "Wrong-Secret-42")
    result = lamina("harbor", "bootstrap", "--project", "hep")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("lamina: error: Harbor look up project 'hep': 401")
    assert result.err.count("\n") == 1 and "Wrong-Secret-42" not in result.err


def test_cli_usage_errors_exit_2(harbor_env: FakeHarbor, lamina: Lamina,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bad_ref = lamina("harbor", "scan", "base:1")
    assert bad_ref.code == 2
    assert bad_ref.err == ("lamina: error: 'base:1': expected PROJECT/REPOSITORY:TAG or "
                           "PROJECT/REPOSITORY@sha256:DIGEST\n")
    no_dir = lamina("harbor", "bootstrap", "--project", "hep", "--robot", "ci",
                    "--robot-secret-file", "/nonexistent/dir/secret")
    assert no_dir.code == 2 and not harbor_env.requests  # refused before touching Harbor
    assert no_dir.err == ("lamina: error: --robot-secret-file /nonexistent/dir/secret: "
                          "directory does not exist\n")
    monkeypatch.delenv("LAMINA_HARBOR_USERNAME")
    no_user = lamina("harbor", "bootstrap", "--project", "hep")
    assert no_user.code == 2
    assert no_user.err == ("lamina: error: Harbor credentials missing: set "
                           "LAMINA_HARBOR_USERNAME and LAMINA_HARBOR_PASSWORD\n")
    monkeypatch.delenv("LAMINA_HARBOR_URL")
    no_url = lamina("harbor", "scan", "hep/base:1")
    assert no_url.code == 2
    assert no_url.err == "lamina: error: no Harbor address: pass --url or set LAMINA_HARBOR_URL\n"


def test_cli_scan_table_json_and_fail_on(harbor_env: FakeHarbor, lamina: Lamina) -> None:
    harbor_env.add_project("hep")
    harbor_env.add_artifact("hep", "ml/torch", "2.4", vulnerabilities={"High": 2, "Low": 1})
    common = ("--url", harbor_env.url, "--interval", "0")
    table = lamina("harbor", "scan", *common, "hep/ml/torch:2.4")
    assert table.code == 0, table.err
    assert "scan of hep/ml/torch:2.4" in table.out and "Success" in table.out
    as_json = lamina("harbor", "scan", *common, "--json", "hep/ml/torch:2.4")
    data = json.loads(as_json.out)
    assert data["counts"] == {"High": 2, "Low": 1} and data["severity"] == "High"
    failing = lamina("harbor", "scan", *common, "--fail-on", "High", "hep/ml/torch:2.4")
    assert failing.code == 1 and "2 vulnerabilities of severity High or worse" in failing.err
    passing = lamina("harbor", "scan", *common, "--fail-on", "Critical", "hep/ml/torch:2.4")
    assert passing.code == 0
    missing = lamina("harbor", "scan", *common, "hep/ml/torch:9")
    assert missing.code == 1 and "404" in missing.err and missing.err.count("\n") == 1
