"""The notebook test tree built once with real buildah (pip through the site CA), and the
JupyterHub peers scripts/setup.d/jupyterhub.sh installs: the hub in the project venv and
configurable-http-proxy under .tools/."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from lamina.cli import main
from tests.builders.conftest import docker_engine
from tests.core.conftest import TREES, lamina, require_tool
from tests.publish.conftest import _tiny_with_base_built, built_tiny, tls_registry

__all__ = ["BuiltNotebook", "_tiny_with_base_built", "built_tiny", "docker_engine", "lamina",
           "notebook", "peer", "tls_registry"]

REPO = Path(__file__).resolve().parents[2]
SITE_CA = Path(os.environ.get("LAMINA_TEST_CA", "/etc/ssl/certs/ca-certificates.crt"))
IMAGE = "singleuser"


def peer(name: str, *places: Path) -> Path:
    """A peer program from the project's own install places first, then PATH; fail if absent."""
    for place in places:
        if os.access(place, os.X_OK):
            return place
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is required for this test; run scripts/setup "
                    "(scripts/setup.d/jupyterhub.sh)")
    return Path(found)


@dataclass(frozen=True)
class BuiltNotebook:
    root: Path
    key: str
    store_ref: str

    @property
    def store(self) -> Path:
        return self.root / ".lamina/store"

    def pinned(self, distribution: str) -> str:
        """The version the hashed amd64 lock pins for ``distribution``."""
        lock = self.root / "layers/singleuser/requirements.amd64.lock"
        for line in lock.read_text().splitlines():
            name, sep, version = line.partition("==")
            if sep and name.strip().lower().replace("_", "-") == distribution:
                return version.split()[0]
        raise AssertionError(f"{distribution} is not pinned in {lock}")

    def config_digest(self) -> str:
        """The stored image's config digest: Docker's image ID once loaded into dockerd."""
        index = json.loads((self.store / "index.json").read_text())
        for desc in index["manifests"]:
            if desc["annotations"]["org.opencontainers.image.ref.name"] == self.store_ref:
                blob = self.store / "blobs" / desc["digest"].replace(":", "/")
                return str(json.loads(blob.read_text())["config"]["digest"])
        raise AssertionError(f"{self.store_ref} is not in {self.store}")


@pytest.fixture(scope="session")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltNotebook]:
    """tests/trees/notebook built for amd64 with lamina, its image tests passing."""
    require_tool("buildah")
    if not SITE_CA.is_file():
        pytest.fail(f"CA bundle {SITE_CA} not found (set LAMINA_TEST_CA)")
    root = tmp_path_factory.mktemp("jupyterhub") / "notebook"
    shutil.copytree(TREES / "notebook", root, ignore=shutil.ignore_patterns(".lamina"))
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["-C", str(root), "build", "--json", "--ca-bundle", str(SITE_CA)])
    rows = json.loads(out.getvalue())
    assert code == 0, [(r["image"], r.get("error")) for r in rows]
    by_image = {r["image"]: r for r in rows}
    assert all(t["passed"] for t in by_image[IMAGE]["tests"]), by_image[IMAGE]["tests"]
    yield BuiltNotebook(root, by_image[IMAGE]["key"], by_image[IMAGE]["store_ref"])
