"""A single-platform image's ``<tag>`` is its per-arch manifest, so DUCC serves it.

What DUCC does with ``<tag>`` (read in its source, since it does not run here):

* the multi-arch DUCC (``ducc/lib/image.go`` ``FetchManifestList2``, the 2025-26 versions
  with ``filterManifestList`` in ``ducc/lib/conversion.go``) takes a one-entry index's digest
  only as ``img.Manifest`` and appends an entry to ``validIndex`` only in its ``else``
  branch (more than one entry), so the list it returns is empty; ``ConvertWishFlat`` loops
  over ``filterManifestList(manifestList, multiArch)``, which returns that empty list (its
  fallback is ``manifestList.Manifests``), and makes no flat and no public symlink: a
  one-entry index yields nothing under ``<tag>``;
* a plain manifest: ``GetManifestList`` wraps it as one item with an empty architecture,
  which ``filterManifestList`` always keeps ("Empty architecture means single-manifest
  (non-multi-arch) image; always include it"), so it is converted; the older DUCC
  (``cvmfs/cvmfs`` devel@ae7450e ``GetManifest``) converts a manifest as well.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult
from tests.publish.conftest import TlsRegistry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def test_single_platform_tag_is_the_per_arch_manifest_and_entries_agree(
        lamina: Callable[..., CliResult], built_tiny: Path, tls_registry: TlsRegistry) -> None:
    root = built_tiny  # platforms: [linux/amd64]
    target = f"{tls_registry.host}/hep"
    published = lamina("-C", str(root), "publish", "base", "--to", target, "--tag", "v1",
                       "--cert-dir", str(tls_registry.cert_dir), "--authfile",
                       str(tls_registry.authfile), "--json")
    assert published.code == 0, published.out + published.err
    (result,) = published.json()
    tags = {t["reference"]: t["digest"] for t in result["tags"]}
    per_arch = tags[f"{target}/base:v1-amd64"]
    assert tags[f"{target}/base:v1"] == per_arch == result["index_digest"]

    # asked for anything, the registry gives a manifest under <tag>, never an index
    got = tls_registry.get("/v2/hep/base/manifests/v1", f"{INDEX}, {MANIFEST}")
    assert got.status_code == 200
    assert got.headers["Content-Type"] == MANIFEST
    assert got.headers["Docker-Content-Digest"] == per_arch
    assert got.json()["mediaType"] == MANIFEST
    assert got.json()["annotations"]["org.opencontainers.image.version"] == "v1"

    # the wishlist lines lamina proposes name what the registry serves at each tag
    entries = lamina("-C", str(root), "cvmfs", "entries", "base", "--json")
    assert entries.code == 0, entries.err
    by_tag = {e["tag"]: e["digest"] for e in entries.json()}
    assert by_tag == {"v1": per_arch, "v1-amd64": per_arch}
