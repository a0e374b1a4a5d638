"""Same inputs, same digests, whatever the umask of the checkout and of the build; and the
site CA is used by the build but never stored.

Reproducibility is tested on what a user does: ``git clone`` the tree and ``lamina build``,
each in a child process with its own umask, each clone with its own state (so its own
rootfs cache: no build reuses another's rootfs tar) and store. git keeps only the modes
0644/0755 (git's object.h ``ce_permissions``) and a clone applies the umask to them (git's
entry.c), so a umask 0002 clone has 0664/0775 files; lamina must give both clones the same
keys and the same manifest digests.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import TREES, CliResult, require_tool
from tests.core.processes import LAMINA, finish

Lamina = Callable[..., CliResult]
BUILD_TIMEOUT = 1200.0


def manifest_digests(store: Path) -> dict[str, str]:
    index = json.loads((store / "index.json").read_text())
    return {d["annotations"]["org.opencontainers.image.ref.name"]: d["digest"]
            for d in index["manifests"]}


def under_umask(umask: str, *cmd: str, timeout: float) -> tuple[int, str, str]:
    """``cmd`` in a child process (its own process group) whose umask is ``umask``; no
    LAMINA_ setting of this environment leaks in, so state and store are the project's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAMINA_")}
    process = subprocess.Popen(["sh", "-c", 'umask "$0" && exec "$@"', umask, *cmd],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=env)
    return finish(process, timeout)


def git_origin(tmp: Path, name: str) -> Path:
    """A repository holding the test tree ``name`` as one commit."""
    origin = tmp / f"{name}-origin"
    shutil.copytree(TREES / name, origin, symlinks=True,
                    ignore=shutil.ignore_patterns(".lamina"))
    git = ["git", "-C", str(origin), "-c", "user.name=lamina", "-c",
           "user.email=lamina@example.org", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", name]):
        proc = subprocess.run([*git, *args], capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
    return origin


def clone_and_build(origin: Path, dest: Path, umask: str) -> list[dict[str, object]]:
    code, _, err = under_umask(umask, "git", "clone", "-q", str(origin), str(dest),
                               timeout=120)
    assert code == 0, err
    code, out, err = under_umask(umask, LAMINA, "-C", str(dest), "build", "--json",
                                 timeout=BUILD_TIMEOUT)
    assert code == 0, out + err
    nodes: list[dict[str, object]] = json.loads(out)
    return nodes


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


@pytest.mark.parametrize("name", ["tiny", "modes"])
def test_clones_under_umask_0022_and_0002_give_identical_keys_and_digests(
        name: str, tmp_path: Path) -> None:
    require_tool("buildah")
    require_tool("git")
    origin = git_origin(tmp_path, name)
    plain, group = tmp_path / "clone-0022", tmp_path / "clone-0002"
    first = clone_and_build(origin, plain, "0022")
    second = clone_and_build(origin, group, "0002")
    # the checkouts really differ: what a umask does to git's 0644 and 0755
    sample = next(p.relative_to(plain) for p in sorted(plain.rglob("layer.yaml")))
    assert (mode(plain / sample), mode(group / sample)) == (0o644, 0o664)
    assert mode(group / "layers") == 0o775
    if name == "modes":
        exe = "layers/tools/files/bin/run-me"
        assert (mode(plain / exe), mode(group / exe)) == (0o755, 0o775)
    # each clone prepared its own root filesystem (separate state, separate caches)
    for clone in (plain, group):
        assert len(list((clone / ".lamina/cache/rootfs").glob("*.tar"))) == 1
    assert all(node["outcome"] == "built" for node in first + second)
    assert {n["image"]: n["key"] for n in first} == {n["image"]: n["key"] for n in second}
    digests = manifest_digests(plain / ".lamina/store")
    assert digests == manifest_digests(group / ".lamina/store")
    assert len(digests) == len(first)


def test_two_clean_builds_give_identical_manifest_digests(
        lamina: Lamina, tmp_path: Path) -> None:
    require_tool("buildah")
    roots = []
    for copy in ("first", "second"):  # separate state: the second prepares its own rootfs
        root = tmp_path / copy / "tiny"
        shutil.copytree(TREES / "tiny", root, ignore=shutil.ignore_patterns(".lamina"))
        assert lamina("-C", str(root), "build").code == 0
        roots.append(root)
    a, b = (manifest_digests(root / ".lamina/store") for root in roots)
    assert set(a) == {"base-amd64", "app-amd64", "leaf-amd64"}
    assert a == b


def image_entries(store: Path, ref: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """The image's files as its layers leave them (read from the OCI layout as the image
    spec defines it: index -> manifest -> layer blobs), with each regular file's bytes."""
    index = json.loads((store / "index.json").read_text())
    digest = next(d["digest"] for d in index["manifests"]
                  if d["annotations"]["org.opencontainers.image.ref.name"] == ref)

    def blob(digest: str) -> bytes:
        return (store / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes()

    entries: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for layer in json.loads(blob(digest))["layers"]:
        data = blob(layer["digest"])
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for info in tar:
                name = info.name.removeprefix("./").rstrip("/")
                handle = tar.extractfile(info) if info.isreg() else None
                entries[name] = (info, handle.read() if handle else b"")
    return entries


def in_image(local_tag: str, *cmd: str) -> str:
    """What ``cmd`` prints in a container of the built image (removed afterwards)."""
    name = f"lamina-test-{uuid.uuid4().hex[:12]}"
    made = subprocess.run(["buildah", "from", "--quiet", "--pull-never", "--name", name,
                           local_tag], capture_output=True, text=True, timeout=300,
                          check=False)
    assert made.returncode == 0, made.stderr
    try:
        proc = subprocess.run(["buildah", "run", "--isolation", "chroot", name, "--", *cmd],
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    finally:
        subprocess.run(["buildah", "rm", name], capture_output=True, timeout=120,
                       check=False)


def local_tag(image: str, key: str) -> str:
    return f"localhost/lamina/{image}:amd64-{key.removeprefix('sha256:')[:20]}"


MODES_PACKAGES = ["busybox-static", "dpkg", "libc6", "libgcc-s1", "libmd0"]


def test_layers_carry_fixed_modes_and_the_debs_are_registered_with_dpkg(
        tmp_path: Path) -> None:
    """Built from a umask 0002 clone under umask 0002: every mode is git's or fixed."""
    require_tool("buildah")
    require_tool("git")
    clone = tmp_path / "clone"
    nodes = clone_and_build(git_origin(tmp_path, "modes"), clone, "0002")
    store = clone / ".lamina/store"
    base = image_entries(store, "base-amd64")
    modes = {name: base[name][0].mode & 0o7777 for name in (
        "tmp", "var/tmp", "etc/hostname", "etc/resolv.conf", "etc/hosts", "etc/machine-id",
        "proc", "sys", "dev", "run", "run/secrets", "var", "var/lib/dpkg/status",
        "var/lib/dpkg/info", "var/lib/dpkg/info/dpkg.list")}
    assert modes == {"tmp": 0o1777, "var/tmp": 0o1777, "etc/hostname": 0o644,
                     "etc/resolv.conf": 0o644, "etc/hosts": 0o644, "etc/machine-id": 0o644,
                     "proc": 0o755, "sys": 0o755, "dev": 0o755, "run": 0o755,
                     "run/secrets": 0o755, "var": 0o755, "var/lib/dpkg/status": 0o644,
                     "var/lib/dpkg/info": 0o755, "var/lib/dpkg/info/dpkg.list": 0o644}
    app = image_entries(store, "app-amd64")
    assert {name: (app[name][0].type, app[name][0].mode & 0o7777) for name in (
        "opt/tools/bin/run-me", "opt/tools/bin", "opt/tools/share/doc/readme.txt",
        "opt/payload/tool.sh", "opt/payload/data.txt")} == {
        "opt/tools/bin/run-me": (tarfile.REGTYPE, 0o755),
        "opt/tools/bin": (tarfile.DIRTYPE, 0o755),
        "opt/tools/share/doc/readme.txt": (tarfile.REGTYPE, 0o644),
        "opt/payload/tool.sh": (tarfile.REGTYPE, 0o755),  # copied by a script (cp -p)
        "opt/payload/data.txt": (tarfile.REGTYPE, 0o644)}
    link = app["opt/tools/README"][0]
    assert link.issym() and link.linkname == "share/doc/readme.txt"

    # dpkg itself, inside the image, knows every package of the rootfs as installed
    key = next(str(n["key"]) for n in nodes if n["image"] == "base")
    listed = in_image(local_tag("base", key), "dpkg-query", "-W",
                      "-f=${Package} ${db:Status-Abbrev}${Version}\n")
    versions = {}
    for line in listed.splitlines():
        package, state, version = line.split(" ", 2)
        assert state == "ii", line
        versions[package] = version
    assert sorted(versions) == MODES_PACKAGES
    # ... and so do the package manifest and the SBOM
    manifest = json.loads((store / "lamina/base/amd64.manifest.json").read_text())
    assert manifest["packages"]["deb"] == versions
    sbom = json.loads((store / "lamina/base/amd64.cdx.json").read_text())
    assert sorted((c["name"], c["version"], c["purl"]) for c in sbom["components"]) == [
        # purl-spec characters-and-encoding.md: ':' is never encoded, '+' always is
        (p, versions[p], f"pkg:deb/debian/{p}@{versions[p].replace('+', '%2B')}?arch=amd64")
        for p in MODES_PACKAGES]


def test_an_image_without_dpkg_query_still_lists_its_debs(
        lamina: Lamina, tree: Callable[[str], Path]) -> None:
    """tiny's root is busybox alone: the probe reads the status file with sh builtins."""
    require_tool("buildah")
    root = tree("tiny")
    result = lamina("-C", str(root), "build", "base")
    assert result.code == 0, result.out + result.err
    store = root / ".lamina/store"
    status = image_entries(store, "base-amd64")["var/lib/dpkg/status"][1].decode()
    version = next(line.split(": ", 1)[1] for line in status.splitlines()
                   if line.startswith("Version: "))
    assert status.startswith("Package: busybox-static\nStatus: install ok installed\n")
    manifest = json.loads((store / "lamina/base/amd64.manifest.json").read_text())
    assert manifest["packages"]["deb"] == {"busybox-static": version}
    sbom = json.loads((store / "lamina/base/amd64.cdx.json").read_text())
    assert [c["name"] for c in sbom["components"]] == ["busybox-static"]


def test_ca_bundle_is_mounted_for_builds_and_appears_in_no_layer(
        lamina: Lamina, tree: Callable[[str], Path], tmp_path: Path) -> None:
    require_tool("buildah")
    root = tree("ca")
    marker = f"LAMINA-SITE-CA-{secrets.token_hex(16)}"
    bundle = tmp_path / "site-ca.pem"
    bundle.write_text(f"-----BEGIN CERTIFICATE-----\n{marker}\n-----END CERTIFICATE-----\n")
    result = lamina("-C", str(root), "build", "--ca-bundle", str(bundle))
    assert result.code == 0, result.out + result.err
    store = root / ".lamina/store"
    blobs = list((store / "blobs/sha256").iterdir())
    assert blobs
    for blob in blobs:
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert marker.encode() not in data, f"CA bundle content found in {blob.name}"
    for log in (root / ".lamina/logs").iterdir():
        assert marker not in log.read_text(errors="replace")
    assert marker not in result.out + result.err
    # and the build without the CA fails at the step that needs it, as it would on a site
    # whose proxy needs the CA
    without = lamina("-C", str(root), "build", "--store", str(tmp_path / "s2"), "--json")
    assert without.code == 1
    fetcher = next(r for r in without.json() if r["image"] == "fetcher")
    assert fetcher["outcome"] == "failed" and "layer uses-ca" in fetcher["error"]
