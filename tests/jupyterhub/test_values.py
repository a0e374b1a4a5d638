"""``lamina jupyterhub`` after a real publish: the values an admin pastes into z2jh (or a
KubeSpawner config) parse, and every image they name is pinned by a digest the registry has."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.core.conftest import CliResult, require_tool
from tests.jupyterhub.conftest import BuiltNotebook
from tests.publish.conftest import TlsRegistry

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PINNED = re.compile(r"^(?P<host>[^/]+)/(?P<repo>[^@:]+(?:/[^@:]+)*)(?::(?P<tag>[^@]+))?"
                    r"@(?P<digest>sha256:[0-9a-f]{64})$")


def image_references(values: dict[str, Any]) -> list[str]:
    """Every image a z2jh values document makes the cluster pull."""
    refs = [profile["kubespawner_override"]["image"]
            for profile in values["singleuser"]["profileList"]]
    refs += [f"{entry['name']}:{entry['tag']}"
             for entry in values["prePuller"]["extraImages"].values()]
    return refs


def assert_in_registry(registry: TlsRegistry, reference: str) -> str:
    match = PINNED.match(reference)
    assert match, f"{reference} is not pinned by digest"
    assert match["host"] == registry.host
    by_digest = registry.get(f"/v2/{match['repo']}/manifests/{match['digest']}",
                             f"{INDEX}, {MANIFEST}")
    assert by_digest.status_code == 200, reference
    assert by_digest.headers["Docker-Content-Digest"] == match["digest"]
    if match["tag"]:  # tag@digest: the tag must still name that digest
        by_tag = registry.get(f"/v2/{match['repo']}/manifests/{match['tag']}",
                              f"{INDEX}, {MANIFEST}")
        assert by_tag.headers["Docker-Content-Digest"] == match["digest"], reference
    return match["digest"]


@pytest.mark.slow  # builds the notebook tree: debootstrap + pip, minutes
def test_values_pin_published_images_that_exist_in_the_registry(
        notebook: BuiltNotebook, lamina: Callable[..., CliResult],
        tls_registry: TlsRegistry) -> None:
    require_tool("skopeo")
    root = str(notebook.root)
    target = f"{tls_registry.host}/hub"
    # Only published images are offered (this registry is new, so nothing is there yet).
    unpublished = lamina("-C", root, "jupyterhub", "--repository", target)
    assert unpublished.code == 2
    assert "has not been published" in unpublished.err

    published = lamina("-C", root, "publish", "singleuser", "--to", target, "--tag", "v1",
                       "--cert-dir", str(tls_registry.cert_dir), "--authfile",
                       str(tls_registry.authfile), "--json")
    assert published.code == 0, published.out + published.err
    index_digest = published.json()[0]["index_digest"]

    result = lamina("-C", root, "jupyterhub", "--repository", target)
    assert result.code == 0, result.err
    # The recipe's hub_version is the release in the image: no mismatch warning.
    assert "warning" not in result.err
    values = YAML(typ="safe").load(result.out)
    (profile,) = values["singleuser"]["profileList"]
    assert profile["display_name"] == "Minimal single-user server"
    assert profile["default"] is True
    refs = image_references(values)
    assert len(refs) == 2
    assert {assert_in_registry(tls_registry, ref) for ref in refs} == {index_digest}
    assert profile["kubespawner_override"]["image"] == f"{target}/singleuser@{index_digest}"

    # The same pins as Python for a hub configured without Helm.
    python = lamina("-C", root, "jupyterhub", "--format", "kubespawner", "--repository",
                    target)
    assert python.code == 0, python.err
    statement = ast.parse(python.out).body
    assert len(statement) == 1 and isinstance(statement[0], ast.Assign)
    assert ast.unparse(statement[0].targets[0]) == "c.KubeSpawner.profile_list"
    profiles = ast.literal_eval(statement[0].value)
    assert [p["kubespawner_override"]["image"] for p in profiles] == \
        [profile["kubespawner_override"]["image"]]


@pytest.mark.slow
def test_a_hub_of_another_release_is_warned_about(
        notebook: BuiltNotebook, lamina: Callable[..., CliResult],
        tls_registry: TlsRegistry) -> None:
    root = str(notebook.root)
    published = lamina("-C", root, "publish", "singleuser", "--to", f"{tls_registry.host}/hub",
                       "--tag", "v1", "--cert-dir", str(tls_registry.cert_dir), "--authfile",
                       str(tls_registry.authfile))
    assert published.code == 0, published.out + published.err
    # the session's notebook may be published by another test too: name this publication
    result = lamina("-C", root, "jupyterhub", "--hub-version", "5.5.4", "--repository",
                    f"{tls_registry.host}/hub")
    assert result.code == 0, result.err
    assert "singleuser" in result.err and "6.1.1" in result.err and "5.5.4" in result.err
    assert "redirect loops" in result.err


def test_an_image_published_in_two_places_needs_an_explicit_repository(
        lamina: Callable[..., CliResult], built_tiny: Path, tls_registry: TlsRegistry) -> None:
    """Which registry a hub pulls from is the admin's choice, never a silent pick."""
    root = built_tiny
    image_file = root / "images/base/image.yaml"
    image_file.write_text(image_file.read_text() + "jupyterhub:\n  display_name: Tiny\n")
    assert lamina("-C", str(root), "build", "base").code == 0  # hub metadata: no new key
    host = tls_registry.host
    digests = {}
    for namespace in ("hep", "lab"):
        published = lamina("-C", str(root), "publish", "base", "--to", f"{host}/{namespace}",
                           "--tag", "v1", "--cert-dir", str(tls_registry.cert_dir),
                           "--authfile", str(tls_registry.authfile), "--json")
        assert published.code == 0, published.out + published.err
        digests[namespace] = published.json()[0]["index_digest"]

    ambiguous = lamina("-C", str(root), "jupyterhub")
    assert ambiguous.code == 2 and ambiguous.out == ""
    assert ambiguous.err == (f"lamina: error: base is published in more than one place "
                             f"({host}/hep, {host}/lab); choose one with --repository "
                             "REGISTRY/NS\n")

    chosen = lamina("-C", str(root), "jupyterhub", "--repository", f"{host}/lab")
    assert chosen.code == 0, chosen.err
    values = YAML(typ="safe").load(chosen.out)
    image = values["singleuser"]["profileList"][0]["kubespawner_override"]["image"]
    assert image == f"{host}/lab/base@{digests['lab']}"
    assert assert_in_registry(tls_registry, image) == digests["lab"]

    elsewhere = lamina("-C", str(root), "jupyterhub", "--repository", f"{host}/other")
    assert elsewhere.code == 2
    assert elsewhere.err == (f"lamina: error: base is marked for JupyterHub but has not been "
                             f"published to {host}/other; run lamina publish first\n")
