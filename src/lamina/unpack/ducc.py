"""Which manifests DUCC converts from an image, and the links it writes, per sync branch.

unpacked.cern.ch runs DUCC (``cvmfs_ducc convert``) on the wishlist of the sync repository's
``master`` branch without ``--multi-arch``, and on its ``multiarch`` branch with it (notes
cvmfs-unpacked.md §1.2, cvmfs#3897). lamina's preview follows DUCC's current code, read in
``cvmfs/cvmfs``:

* ``ducc/lib/image.go`` ``GetManifestList``: a plain manifest becomes one entry with an empty
  architecture ("for images without manifestlist, assume amd64 arch").
  ``FetchManifestList2``: an index keeps its entries only when it has more than one
  (``validIndex`` is filled in the ``else`` branch only), dropping ``unknown`` ones (BuildKit
  attestations). So a one-entry index converts to nothing.
* ``ducc/lib/conversion.go`` ``filterManifestList``: without ``--multi-arch`` the first entry
  whose architecture is empty or ``runtime.GOARCH`` (``amd64`` on the publisher) is the only
  one; when none matches, every entry is converted, each linked at the public path in turn
  (the last one wins).
* ``ConvertWishFlat``: with ``--multi-arch`` each entry's flat is linked at
  ``.multiarch/<GetNameWithArch>/<registry>/<repo>:<tag>`` (``arch`` or ``arch:variant``; an
  entry without architecture at the public path itself); then the public path becomes the
  variant symlink of ``image.go`` ``GetVariantSymlinkTarget``
  (``../…/.multiarch/$(CVMFS_ARCH:-amd64)/<public>``), and ``createMultiarchAliasSymlinks``
  writes the alias table :data:`ARCH_ALIASES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

MASTER = "master"
MULTIARCH = "multiarch"
BRANCHES = (MASTER, MULTIARCH)
PUBLISHER_ARCH = "amd64"  # runtime.GOARCH of the DUCC that serves unpacked.cern.ch
UNKNOWN = "unknown"

# conversion.go archAliases: alias -> candidate .multiarch directories, first existing wins
ARCH_ALIASES: dict[str, tuple[str, ...]] = {
    "aarch64": ("arm64", "arm64:v8"),
    "arm64": ("arm64:v8",),
    "armhf": ("arm",),
    "armel": ("arm:v6",),
    "i386": ("386",),
    "x86_64": ("amd64",),
    "x86-64": ("amd64",),
}
# what `uname -m` (CVMFS_ARCH on a client >= 2.11, cvmfs#3127) says on each OCI architecture
CLIENT_UNAME = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386", "arm": "armhf"}


class HasArch(Protocol):
    @property
    def arch(self) -> str: ...


E = TypeVar("E", bound=HasArch)


def listed(entries: Sequence[E], index_entries: int) -> list[E]:
    """The entries DUCC's ``GetManifestList`` yields: a plain manifest (``index_entries`` 0)
    as is; an index's entries without ``unknown`` ones, and none at all when the index has
    one entry."""
    if index_entries == 0:
        return list(entries)
    if index_entries == 1:
        return []
    return [e for e in entries if e.arch != UNKNOWN]


def converted(entries: Sequence[E], branch: str) -> list[E]:
    """``filterManifestList``: every entry on ``multiarch``; on ``master`` the first entry
    without architecture or for the publisher's architecture, else all of them."""
    if branch == MULTIARCH:
        return list(entries)
    for entry in entries:
        if entry.arch in ("", PUBLISHER_ARCH):
            return [entry]
    return list(entries)


def variant_target(public_relpath: str) -> str:
    """The raw target of the public path's variant symlink (``GetVariantSymlinkTarget``):
    one ``../`` per directory above the link, then ``.multiarch/$(CVMFS_ARCH:-amd64)/…``."""
    depth = len(public_relpath.split("/")) - 1
    return "../" * depth + f".multiarch/$(CVMFS_ARCH:-{PUBLISHER_ARCH})/{public_relpath}"


def expand_variant(target: str, cvmfs_arch: str) -> str:
    """The target as a CVMFS client with ``CVMFS_ARCH=cvmfs_arch`` reads it."""
    return target.replace(f"$(CVMFS_ARCH:-{PUBLISHER_ARCH})", cvmfs_arch)


def alias_links(present: set[str], real_dirs: set[str]) -> dict[str, str]:
    """``createMultiarchAliasSymlinks``: alias -> target for each alias that is not a real
    directory and has an existing candidate (``present``: names under ``.multiarch`` that
    resolve to a directory)."""
    out = {}
    for alias, candidates in ARCH_ALIASES.items():
        if alias in real_dirs:
            continue
        target = next((c for c in candidates if c in present), None)
        if target is not None:
            out[alias] = target
    return out
