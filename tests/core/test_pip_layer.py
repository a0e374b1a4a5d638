"""A pip layer installs a hashed lock over HTTPS with the site CA mounted, and cleans up."""

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
