"""The shipped HEP tree: os-base -> framework built for amd64 with real pip through the site
CA, the HEP workload inside the built image, a user venv overriding one framework package,
and layer hygiene enforced on real layers."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamina.cli import main
from lamina.hygiene import scan_layer
from lamina.platforms import parse_platform
from lamina.render import local_tag
from tests.core.conftest import require_tool

pytestmark = pytest.mark.slow  # the shipped framework: debootstrap + pip, minutes

REPO = Path(__file__).resolve().parents[2]
SITE_CA = Path(os.environ.get("LAMINA_TEST_CA", "/etc/ssl/certs/ca-certificates.crt"))
AMD64 = parse_platform("linux/amd64")


def _lamina(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    from contextlib import redirect_stdout
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def framework(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The shipped tree, amd64 only, built up to framework; yields (root, keys)."""
    require_tool("buildah")
    root = tmp_path_factory.mktemp("hep") / "tree"
    root.mkdir()
    for part in ("recipe.yaml", "images", "layers"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part)
        else:
            shutil.copy(source, root / part)
    recipe = root / "recipe.yaml"
    text = recipe.read_text()
    assert "platforms: [linux/amd64, linux/arm64, linux/ppc64le]" in text
    recipe.write_text(text.replace("platforms: [linux/amd64, linux/arm64, linux/ppc64le]",
                                   "platforms: [linux/amd64]"))
    code, out = _lamina("-C", str(root), "build", "framework", "--json", "--ca-bundle",
                        str(SITE_CA))
    results = json.loads(out)
    assert code == 0, [r["error"] for r in results]
    keys = {r["image"]: r["key"] for r in results}
    yield root, keys


def test_framework_builds_with_passing_tests_and_import_tests(
        framework: tuple[Path, dict[str, str]]) -> None:
    root, keys = framework
    assert set(keys) == {"os-base", "framework"}
    record = json.loads((root / ".lamina/store/lamina/framework/amd64.json").read_text())
    assert record["tests"]["status"] == "passed"
    code, out = _lamina("-C", str(root), "test", "framework", "--json")
    assert code == 0
    rows = json.loads(out)
    assert all(r["passed"] for r in rows)
    names = {r["name"] for r in rows if r["image"] == "framework"}
    # one automatic import test per requested package, with the name -> module map applied
    assert {"import uproot", "import awkward", "import coffea", "import boost_histogram",
            "import hist", "import pyhf", "import iminuit", "import mplhep"} <= names


def _run_in(root: Path, key: str, command: str, *mounts: str) -> subprocess.CompletedProcess[str]:
    tag = local_tag("framework", AMD64, key)
    name = f"lamina-hep-{os.getpid()}"
    subprocess.run(["buildah", "from", "--quiet", "--pull-never", "--name", name, tag],
                   check=True, capture_output=True)
    try:
        cmd = ["buildah", "run", "--isolation", "chroot"]
        for mount in mounts:
            cmd += ["-v", mount]
        return subprocess.run([*cmd, name, "--", "/bin/sh", "-c", command],
                              capture_output=True, text=True, check=False)
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, check=False)


def test_hep_workload_gives_exact_histogram_counts_inside_the_image(
        framework: tuple[Path, dict[str, str]]) -> None:
    root, keys = framework
    package = root / "layers/analysis-example/files"
    proc = _run_in(root, keys["framework"],
                   "cd /tmp && PYTHONPATH=/opt/analysis python3 -m hepdemo",
                   f"{package}:/opt/analysis:ro")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ("counts [3, 5, 5, 25, 20, 17] | "
                                   "coffea 100 events, 38 selected")


def test_user_venv_overrides_one_framework_package_without_touching_the_image(
        framework: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, keys = framework
    wheels = tmp_path / "wheels"
    subprocess.run([str(Path(os.sys.executable)), "-m", "pip", "download", "--quiet",
                    "--no-deps", "--only-binary=:all:", "--cert", str(SITE_CA), "-d",
                    str(wheels), "vector==1.5.2"], check=True, capture_output=True)
    script = (
        "set -e; cd /tmp; python3 -m venv --system-site-packages /tmp/venv; "
        "/tmp/venv/bin/python -m pip install -q --no-index --no-deps /wheels/*.whl; "
        "/tmp/venv/bin/python -c 'import vector, uproot; print(vector.__version__)'; "
        "python3 -c 'import vector; print(vector.__version__)'"
    )
    proc = _run_in(root, keys["framework"], script, f"{wheels}:/wheels:ro")
    assert proc.returncode == 0, proc.stderr[-2000:]
    in_venv, in_image = proc.stdout.split()
    assert in_venv == "1.5.2"
    lock = (root / "layers/scikit-hep/requirements.amd64.lock").read_text()
    assert f"vector=={in_image} " in lock and in_image != "1.5.2"


def test_framework_layers_are_clean(framework: tuple[Path, dict[str, str]]) -> None:
    root, _ = framework
    store = root / ".lamina/store"
    record = json.loads((store / "lamina/framework/amd64.json").read_text())
    assert [layer["name"] for layer in record["layers"]] == [
        "python3", "xrootd-client", "scikit-hep"]
    for layer in record["layers"]:
        algo, digest = layer["digest"].split(":")
        assert scan_layer(store / "blobs" / algo / digest, layer["name"]) == []


def _layer(tmp_path: Path, members: dict[str, bytes]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


@pytest.mark.parametrize(("member", "problem"), [
    ("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", "apt lists"),
    ("root/.cache/pip/http/x", "pip caches"),
    ("var/log/dpkg.log", "log files"),
    ("usr/lib/python3/__pycache__/m.cpython-311.pyc", "timestamp-based .pyc"),
])
def test_hygiene_finds_what_must_not_ship(tmp_path: Path, member: str, problem: str) -> None:
    timestamp_pyc = b"\xa7\r\r\n" + (0).to_bytes(4, "little") + b"\0" * 8
    path = _layer(tmp_path, {member: timestamp_pyc, "usr/bin/ok": b"x"})
    assert [(f.path, f.problem) for f in scan_layer(path, "bad")] == [(member, problem)]


def test_hash_based_pyc_is_clean(tmp_path: Path) -> None:
    checked = b"\xa7\r\r\n" + (3).to_bytes(4, "little") + b"\0" * 8
    path = _layer(tmp_path, {"usr/lib/python3/__pycache__/m.cpython-311.pyc": checked})
    assert scan_layer(path, "ok") == []


def test_an_unclean_layer_fails_the_build(tree: Callable[[str], Path],
                                          lamina: Callable[..., object]) -> None:
    require_tool("buildah")
    root = tree("tiny")
    script = root / "layers/hello-script/build.sh"
    script.write_text(script.read_text() + "mkdir -p /var/log && echo x > /var/log/build.log\n")
    result = lamina("-C", str(root), "build", "--json")
    leaf = next(r for r in result.json() if r["image"] == "leaf")  # type: ignore[attr-defined]
    assert leaf["outcome"] == "failed"
    assert "layer hygiene: hello-script: /var/log/build.log (log files)" in leaf["error"]


def test_analysis_example_on_framework_changes_only_its_small_top_layer_and_runs_unpacked(
        framework: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """The analyst's loop: analysis-example (here directly on framework, to keep the suite
    short; the main job builds it on notebook) passes the HEP workload test; changing only
    the analysis package rebuilds only analysis-example, whose new layer is under 5 % of the
    image; and the unpacked image runs the same test under lamina exec with the image ENV."""
    require_tool("bwrap")
    root, _ = framework
    image_file = root / "images/analysis-example/image.yaml"
    image_file.write_text(image_file.read_text().replace("parent: notebook", "parent: framework"))
    code, out = _lamina("-C", str(root), "build", "analysis-example", "--json", "--ca-bundle",
                        str(SITE_CA))
    first = {r["image"]: r for r in json.loads(out)}
    assert code == 0, [r["error"] for r in first.values()]
    assert first["analysis-example"]["outcome"] == "built"
    workload = [t for t in first["analysis-example"]["tests"] if t["name"].startswith("HEP")]
    assert workload and workload[0]["passed"]

    module = root / "layers/analysis-example/files/hepdemo/analysis.py"
    module.write_text(module.read_text() + "\n# tuned the selection comment\n")
    code, plan_out = _lamina("-C", str(root), "plan", "analysis-example", "--json")
    statuses = {e["image"]: (e["status"], e["reason"]) for e in json.loads(plan_out)}
    assert statuses["os-base"][0] == statuses["framework"][0] == "up-to-date"
    assert statuses["analysis-example"][0] == "build"
    assert "layer analysis-example: directory files/ changed" in statuses["analysis-example"][1]
    code, out = _lamina("-C", str(root), "build", "analysis-example", "--json", "--ca-bundle",
                        str(SITE_CA))
    second = {r["image"]: r for r in json.loads(out)}
    assert code == 0, [r["error"] for r in second.values()]
    assert {n: r["outcome"] for n, r in second.items()} == {
        "os-base": "up-to-date", "framework": "up-to-date", "analysis-example": "built"}
    top = second["analysis-example"]
    assert top["layer_sizes"][-1][0] == "analysis-example"
    assert top["top_layer_share"] < 0.05
    assert top["layer_sizes"][-1][1] < 0.05 * top["size"]

    unpacked = tmp_path / "cvmfs"
    code, _ = _lamina("-C", str(root), "unpack", "analysis-example", str(unpacked))
    assert code == 0
    public = unpacked / "localhost/lamina/analysis-example:latest"
    assert public.is_symlink()
    proc = subprocess.run(
        [str(Path(os.sys.executable).with_name("lamina")), "exec", str(public), "--",
         "/bin/sh", "-c", 'echo "PYTHONPATH=$PYTHONPATH"; cd /tmp && python3 -m hepdemo'],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "PYTHONPATH=/opt/analysis"
    assert lines[-1] == "counts [3, 5, 5, 25, 20, 17] | coffea 100 events, 38 selected"


def test_unpacked_shipped_os_base_equals_umoci_unpack(
        framework: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    """lamina unpack of the shipped os-base (a real Debian rootfs: hardlinks, setuid
    binaries, many symlinks) equals umoci's rootfs, apart from what the unpacker adds."""
    require_tool("umoci")
    from lamina.unpack.singularity import FHS_DIRS, SYMLINKS
    from tests.unpack.test_crosscheck import tree_entries

    root, _ = framework
    out = tmp_path / "unpacked"
    code, text = _lamina("-C", str(root), "unpack", "os-base", str(out), "--json")
    assert code == 0
    flat = Path(json.loads(text)["flats"][0]["path"])
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{root / '.lamina/store'}:os-base-amd64",
                    str(bundle)], check=True, capture_output=True)
    theirs = tree_entries(bundle / "rootfs")
    ours = tree_entries(flat)
    injected = {k for k in ours if k == ".singularity.d" or k.startswith(".singularity.d/")}
    injected |= {k for k in ours if k in SYMLINKS or k in FHS_DIRS} - set(theirs)
    # device nodes are skipped, as the unpacker does (CVMFS cannot hold them)
    devices = {k for k, v in theirs.items() if v[0] == "other"}
    assert "dev/null" in devices
    assert {k: v for k, v in ours.items() if k not in injected} == {
        k: v for k, v in theirs.items() if k not in devices}
    assert len(theirs) > 3000
