"""A pip layer installs a hashed lock over HTTPS with the site CA mounted, and cleans up;
its wheels come from lamina's cache outside the layers, so a one-pin change downloads one."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool

SITE_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def test_pip_layer_is_one_clean_layer(lamina: Callable[..., CliResult],
                                      tree: Callable[[str], Path]) -> None:
    require_tool("buildah")
    require_tool("debootstrap")
    root = tree("pip")
    result = lamina("-C", str(root), "build", "--ca-bundle", str(SITE_CA), "--json")
    assert result.code == 0, result.out + result.err
    with_six = next(r for r in result.json() if r["image"] == "with-six")
    assert {t["name"]: t["passed"] for t in with_six["tests"]} == {
        "import six": True,  # automatic, from the requested packages
        "import toml": True,
        "six imports from the prefix": True,
        "byte code is hash-based, not timestamped": True,
        "no pip cache left": True,
    }
    record = json.loads((root / ".lamina/store/lamina/with-six/amd64.json").read_text())
    assert [layer["name"] for layer in record["layers"]] == ["six"]
    blob = root / ".lamina/store/blobs" / record["layers"][0]["digest"].replace(":", "/")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.read_bytes()))) as tar:
        names = tar.getnames()
    assert any(n.endswith("six.py") for n in names)
    assert not any("/.cache/" in n or n.startswith("root/.cache") for n in names), names
    assert not any(n.startswith("tmp/") and n != "tmp/" for n in names), names
    assert not any(n.lstrip("./").startswith("run/lamina-pip-cache") for n in names), names
    assert any(n.endswith("toml/__init__.py") for n in names)

    # the wheels pip downloaded stay in lamina's cache (state dir), outside every layer
    wheels = root / ".lamina/cache/pip/wheels"
    assert sorted(p.name for p in wheels.iterdir()) == [
        "six-1.16.0-py2.py3-none-any.whl", "toml-0.10.2-py2.py3-none-any.whl"]

    # The package manifest, Markdown and SBOM sit beside the image in the store.
    base = root / ".lamina/store/lamina/with-six"
    manifest = json.loads((base / "amd64.manifest.json").read_text())
    assert manifest["packages"]["pip"]["six"] == "1.16.0"
    assert "python3" in manifest["packages"]["deb"]
    assert "| six | 1.16.0 |" in (base / "amd64.manifest.md").read_text()
    sbom = json.loads((base / "amd64.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    assert {"type": "library", "name": "six", "version": "1.16.0",
            "purl": "pkg:pypi/six@1.16.0"} in sbom["components"]

    # One package version changes: the release notes say exactly that.
    old_key = manifest["key"]
    lock = root / "layers/six/requirements.lock"
    lock.write_text(lock.read_text().replace(
        "six==1.16.0 \\\n    --hash=sha256:"
        "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254",
        "six==1.15.0 \\\n    --hash=sha256:"
        "8b74bedcbbbaca38ff6d7491d76f2b06b3592611af620f8426e82dddb04a5ced"))
    assert "six==1.15.0" in lock.read_text()
    (root / "layers/six/layer.yaml").write_text(
        (root / "layers/six/layer.yaml").read_text().replace('"1.16.0"', '"1.15.0"'))
    rebuilt = lamina("-C", str(root), "build", "--ca-bundle", str(SITE_CA), "--json")
    assert rebuilt.code == 0, rebuilt.out
    assert {r["image"]: r["outcome"] for r in rebuilt.json()} == {
        "py": "up-to-date", "with-six": "built"}
    # one pin changed, one wheel downloaded: toml came from the cache
    assert sorted(p.name for p in wheels.iterdir()) == [
        "six-1.15.0-py2.py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl",
        "toml-0.10.2-py2.py3-none-any.whl"]
    log = (root / ".lamina/logs/with-six-amd64.log").read_text()
    assert "File was already downloaded /run/lamina-pip-cache/wheels/toml-0.10.2" in log, log
    assert log.count("Saved /run/lamina-pip-cache/wheels/") == 1, log
    notes = lamina("-C", str(root), "diff", f"with-six@{old_key}", "with-six", "--json")
    assert notes.code == 0, notes.err
    changes = notes.json()["changes"]
    assert [c for c in changes if not c.startswith("size ")] == [
        "~ pip six 1.16.0 -> 1.15.0"]

    # A wheel the cache lacks and the download refuses (its hash does not match): the pip
    # step fails and names itself, rather than committing a layer without the package.
    lock.write_text(lock.read_text().replace(
        "six==1.15.0 \\\n    --hash=sha256:8b74",
        "six==1.14.0 \\\n    --hash=sha256:8b74"))
    refused = lamina("-C", str(root), "build", "--ca-bundle", str(SITE_CA), "--json")
    assert refused.code == 1, refused.out
    failed = next(r for r in refused.json() if r["image"] == "with-six")
    assert failed["outcome"] == "failed"
    assert failed["error"].startswith("buildah bud failed (exit 1) in layer six (pip) at step "
                                      ), failed["error"]
    assert ("Expected sha256 8b74bedcbbbaca38ff6d7491d76f2b06b3592611af620f8426e82dddb04a5ced"
            " | Got ") in failed["error"], failed["error"]
    assert sorted(p.name for p in wheels.iterdir()) == [
        "six-1.15.0-py2.py3-none-any.whl", "six-1.16.0-py2.py3-none-any.whl",
        "toml-0.10.2-py2.py3-none-any.whl"]  # nothing unverified kept in the cache
