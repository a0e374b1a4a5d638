"""The generated child pipeline, run end to end by gitlab-ci-local's shell executor.

The tiny tree (base → app → leaf) is a git project of its own; ``lamina ci gitlab`` writes the
pipeline, which is run directly as the pipeline (gitlab-ci-local reports a failing *child*
pipeline as a success, so triggering it from the parent would hide failures). Jobs run in
isolated copies of the checkout (``--shell-isolation``), so they only see what their
``needs:`` hand them, as on a real runner. Registry settings and credentials come in as the
project's CI/CD variables (gitlab-ci-local's variables file), never on a command line.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from ruamel.yaml import YAML

import lamina
from tests.core.conftest import TREES, CliResult, require_tool
from tests.publish.conftest import TlsRegistry

ROOT = Path(__file__).resolve().parents[2]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
RUN_TIMEOUT = 600  # a bound, not a goal: a normal run takes 30-60 s, 150+ s beside another worker


def gitlab_ci_local() -> str:
    """The pinned gitlab-ci-local scripts/setup installs (project-local), or one on PATH."""
    local = ROOT / ".tools/bin/gitlab-ci-local"
    if local.exists():
        return str(local)
    found = shutil.which("gitlab-ci-local")
    if found is None:
        pytest.fail("gitlab-ci-local is required for this test; run scripts/setup")
    return found


@dataclass
class Run:
    code: int
    out: str

    def lines(self, job: str, marker: str) -> list[int]:
        """Indexes of the output lines where ``job`` prints ``marker`` (jobs are padded)."""
        pattern = re.compile(rf"^{re.escape(job)}\s+{re.escape(marker)}")
        return [i for i, line in enumerate(self.out.splitlines()) if pattern.match(line)]

    def started(self, job: str) -> int:
        found = self.lines(job, "starting shell")
        assert found, f"{job} never started:\n{self.out[-4000:]}"
        return found[0]

    def finished(self, job: str) -> int:
        found = self.lines(job, "finished in")
        assert found, f"{job} never finished:\n{self.out[-4000:]}"
        return found[0]

    def status(self, job: str) -> str | None:
        """PASS / FAIL from the summary gitlab-ci-local prints last."""
        match = re.search(rf"^ (PASS|FAIL|WARN) +{re.escape(job)} *$", self.out, re.M)
        return match.group(1) if match else None


def lamina_on_path(bin_dir: Path) -> None:
    """A ``lamina`` command running the sources under test with this interpreter."""
    src = Path(lamina.__file__).resolve().parents[1]
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "lamina"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={src} exec {sys.executable} -m lamina.cli "
                       '"$@"\n')
    wrapper.chmod(0o755)


def git_project(path: Path) -> Path:
    """The tiny tree as a committed git project (gitlab-ci-local copies tracked files)."""
    shutil.copytree(TREES / "tiny", path, ignore=shutil.ignore_patterns(".lamina"))
    (path / ".gitignore").write_text(".lamina/\n.gitlab-ci-local/\n"
                                     ".gitlab-ci-local-variables.yml\nchild.yml\n")
    commit(path, "tiny tree")
    return path


def commit(path: Path, message: str) -> None:
    git = ["git", "-C", str(path), "-c", "user.name=lamina test",
           "-c", "user.email=test@lamina.invalid"]
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)


def ci_variables(project: Path, registry: TlsRegistry) -> None:
    """The project's CI/CD variables: the target and GitLab's registry login.

    (A value naming an existing path would become a File variable here, as in GitLab, so the
    CA directory is passed with --variable instead.)
    """
    (project / ".gitlab-ci-local-variables.yml").write_text(
        f"LAMINA_TARGET: {registry.host}/hep\n"
        f"CI_REGISTRY: {registry.host}\n"
        f"CI_REGISTRY_USER: {registry.username}\n"
        f"CI_REGISTRY_PASSWORD: {registry.password}\n")


def run_pipeline(project: Path, bin_dir: Path, tag: str, registry: TlsRegistry) -> Run:
    cmd = [gitlab_ci_local(), "--file", "child.yml", "--shell-executor-no-image",
           "--shell-isolation", "--no-artifacts-to-source", "--no-color",
           "--home", str(project.parent / "gcl-home"), "--variable", f"CI_COMMIT_TAG={tag}",
           "--variable", f"LAMINA_CERT_DIR={registry.cert_dir}",
           # CI_REGISTRY is predefined (by GitLab, for its own registry); here it is the
           # loopback one, set like a project variable, which gitlab-ci-local warns about.
           "--ignore-predefined-vars", "CI_REGISTRY"]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the job shells and their builds too
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"gitlab-ci-local did not finish in {RUN_TIMEOUT}s:\n{out[-4000:]}")
    (project.parent / f"{project.name}-gitlab-ci-local.log").write_text(out)  # for debugging
    return Run(proc.returncode, out)


def manifest(registry: TlsRegistry, image: str, ref: str, accept: str) -> requests.Response:
    return registry.get(f"/v2/hep/{image}/manifests/{ref}", accept)


def test_child_pipeline_runs_in_tree_order_and_publishes(
        lamina: Callable[..., CliResult], tls_registry: TlsRegistry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for tool in ("git", "rsync", "node", "buildah", "skopeo"):
        require_tool(tool)
    for name in ("LAMINA_STORE", "LAMINA_STATE", "LAMINA_PROJECT"):
        monkeypatch.delenv(name, raising=False)  # the pipeline is generated in-process
    bin_dir = tmp_path / "bin"
    lamina_on_path(bin_dir)

    # 1. The whole tree, the store handed along needs: as artifacts (the default).
    project = git_project(tmp_path / "tiny")
    ci_variables(project, tls_registry)
    generated = lamina("-C", str(project), "ci", "gitlab")
    assert generated.code == 0, generated.err
    (project / "child.yml").write_text(generated.out)
    run = run_pipeline(project, bin_dir, "v1.0", tls_registry)
    assert run.code == 0, run.out[-6000:]
    jobs = ["build:base:amd64", "build:app:amd64", "build:leaf:amd64", "test:base:amd64",
            "test:app:amd64", "test:leaf:amd64", "publish:base", "publish:app", "publish:leaf"]
    assert {job: run.status(job) for job in jobs} == {job: "PASS" for job in jobs}
    # Tree order: a job starts only after the jobs it needs have finished.
    assert run.finished("build:base:amd64") < run.started("build:app:amd64")
    assert run.finished("build:app:amd64") < run.started("build:leaf:amd64")
    assert run.finished("build:leaf:amd64") < run.started("test:leaf:amd64")
    assert run.finished("test:leaf:amd64") < run.started("publish:leaf")
    assert run.finished("publish:app") < run.started("publish:leaf")
    assert tls_registry.password not in run.out

    # publish:leaf worked from its parents' results: the tested store of test:leaf (or it
    # would refuse: "not publishable") and publish:app's record, which names the base.
    # (single-platform: <tag> is the amd64 manifest itself, which DUCC serves)
    tagged = manifest(tls_registry, "leaf", "v1.0", f"{OCI_INDEX}, {OCI_MANIFEST}")
    assert tagged.status_code == 200, tagged.text
    assert tagged.headers["Content-Type"] == OCI_MANIFEST
    leaf = manifest(tls_registry, "leaf", "v1.0-amd64", OCI_MANIFEST)
    assert leaf.status_code == 200
    assert tagged.headers["Docker-Content-Digest"] == leaf.headers["Docker-Content-Digest"]
    app = manifest(tls_registry, "app", "v1.0-amd64", OCI_MANIFEST)
    assert app.status_code == 200
    annotations = leaf.json()["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == (
        f"{tls_registry.host}/hep/app:v1.0-amd64")
    assert annotations["org.opencontainers.image.base.digest"] == (
        app.headers["Docker-Content-Digest"])
    assert annotations["org.opencontainers.image.version"] == "v1.0"

    # 2. A failing build, with a store shared by the jobs outside their checkouts (the
    #    shell-runner setup): seeded with the tested tree of run 1, so base is up to date and
    #    left out. app's files and leaf's build script (now `exit 3`) changed. The run fails;
    #    leaf is neither tested nor published, while app still is.
    seeds = list((project / ".gitlab-ci-local/artifacts").glob("test*leaf*amd64/.lamina/store"))
    assert len(seeds) == 1, seeds
    shared = tmp_path / "shared-store"
    shutil.copytree(seeds[0], shared)
    broken = git_project(tmp_path / "broken")
    ci_variables(broken, tls_registry)
    greeting = broken / "layers/hello-files/files/greeting.txt"
    greeting.write_text(greeting.read_text() + "second release\n")
    (broken / "layers/hello-script/build.sh").write_text("#!/bin/sh\nexit 3\n")
    commit(broken, "app changes; leaf's build fails")
    generated = lamina("-C", str(broken), "ci", "gitlab", "--store", str(shared))
    assert generated.code == 0, generated.err
    child = YAML(typ="safe").load(generated.out)
    assert child["variables"]["LAMINA_STORE"] == str(shared)
    assert sorted(k for k in child if ":" in k) == [
        "build:app:amd64", "build:leaf:amd64", "publish:app", "publish:leaf", "test:app:amd64",
        "test:leaf:amd64"]
    (broken / "child.yml").write_text(generated.out)
    failed = run_pipeline(broken, bin_dir, "v2.0", tls_registry)
    assert failed.code != 0, failed.out[-6000:]
    assert failed.status("build:leaf:amd64") == "FAIL"
    assert re.search(r"^build:leaf:amd64 +> .*failed \(exit 3\) in layer hello-script",
                     failed.out, re.M), failed.out[-4000:]
    assert not failed.lines("test:leaf:amd64", "starting shell")
    assert not failed.lines("publish:leaf", "starting shell")
    assert failed.status("build:app:amd64") == failed.status("publish:app") == "PASS"
    both = f"{OCI_INDEX}, {OCI_MANIFEST}"
    assert manifest(tls_registry, "leaf", "v2.0", both).status_code == 404
    assert manifest(tls_registry, "leaf", "v2.0-amd64", OCI_MANIFEST).status_code == 404
    assert manifest(tls_registry, "app", "v2.0", both).status_code == 200
    # build:app found base in the shared store; nothing of the store went through artifacts.
    assert (shared / "lamina/app/published.json").exists()
    exported = list((broken / ".gitlab-ci-local/artifacts").glob("build*app*/.lamina"))
    assert len(exported) == 1 and (exported[0] / "logs").is_dir()
    assert not (exported[0] / "store").exists()
