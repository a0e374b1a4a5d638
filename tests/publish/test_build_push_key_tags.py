"""``build --push`` without a release version pushes each built node once, under its key tag.

The re-plan after the build is asked for the platforms of the planned nodes; it must plan
every (image, platform) once however many nodes share a platform, or the key tags are pushed
(and checked with one ``skopeo inspect`` each) once per node of the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult, require_tool
from tests.publish.conftest import TlsRegistry


def test_build_push_without_tag_pushes_each_key_tag_once(
        lamina: Callable[..., CliResult], tree: Callable[[str], Path],
        tls_registry: TlsRegistry) -> None:
    require_tool("buildah")
    require_tool("skopeo")
    root = tree("tiny")
    target = f"{tls_registry.host}/hep"
    result = lamina("-C", str(root), "build", "--push", "--to", target, "--json",
                    "--cert-dir", str(tls_registry.cert_dir),
                    "--authfile", str(tls_registry.authfile))
    assert result.code == 0, result.err + result.out
    pushed = result.json()["key_tags"]
    images = sorted(ref.rsplit(":", 1)[0].rsplit("/", 1)[1] for ref in pushed)
    assert images == ["app", "base", "leaf"], pushed
    assert all(ref.rsplit(":", 1)[1].startswith("lamina-") for ref in pushed)
