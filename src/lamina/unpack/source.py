"""Where ``lamina unpack`` takes an image from, and which manifests it unpacks.

REF forms:

* ``docker://host[:port]/repo[:tag][@sha256:…]`` or ``host[:port]/repo:tag`` (the first
  component has a ``.`` or ``:`` or is ``localhost``): copied with ``skopeo copy --all`` into a
  cache OCI layout at ``<store>/lamina/unpack-cache``, then read from there. The public path is
  ``<host[:port]>/<repo>:<tag>`` (``:sha256:<hex>`` for a digest-only reference), as DUCC names
  it; a reference with neither tag nor digest is refused, as DUCC panics on it.
* ``oci:PATH[:REF]``: an OCI image layout anywhere; REF is its ref-name annotation (optional
  when the layout holds one image). Public path ``localhost/<REF>:latest`` unless ``--name``.
* ``IMAGE`` or ``IMAGE-ARCH``: an image of the local store (refs ``<image>-<arch>``). All
  architectures present in the store count as one multi-arch image. Public path
  ``localhost/lamina/<image>:latest`` unless ``--name``.

Platform choice follows DUCC's multi-arch mode: index entries with architecture ``unknown``
(BuildKit attestations) are dropped; ``--platform`` keeps one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lamina.credentials import CredentialStore
from lamina.cvmfs import EntryError
from lamina.cvmfs.entries import parse_entry
from lamina.errors import UsageError
from lamina.platforms import UNAME
from lamina.store import REF_ANNOTATION, Store
from lamina.target import pull, refuse_userinfo, unpack_registries
from lamina.unpack.documents import (
    Descriptor,
    ImageConfig,
    LayoutError,
    Manifest,
    blob_path,
    descriptors,
    is_index,
    parse_config,
    parse_manifest,
    read_blob_document,
    read_index_json,
)

ARCH_RE = re.compile(r"^[a-z0-9_]{1,32}$")


def arch_dir(arch: object, variant: object, where: Path | str) -> tuple[str, str]:
    """``(arch, arch[:variant])``; the names become ``.multiarch/<dir>``, so they are checked."""
    if not isinstance(arch, str) or not ARCH_RE.match(arch):
        raise LayoutError(f"{where}: invalid architecture {arch!r} in an image document")
    if variant in (None, ""):
        return arch, arch
    if not isinstance(variant, str) or not ARCH_RE.match(variant):
        raise LayoutError(f"{where}: invalid variant {variant!r} in an image document")
    return arch, f"{arch}:{variant}"


@dataclass(frozen=True)
class PublicName:
    """``<registry>/<repository>:<tag>``: the path analysts run on CVMFS."""

    registry: str
    repository: str
    tag: str  # a tag, or sha256:<hex> for a digest-only reference

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def relpath(self) -> Path:
        return Path(self.registry, *self.repository.split("/")[:-1],
                    f"{self.repository.split('/')[-1]}:{self.tag}")


@dataclass(frozen=True)
class RegistryRef:
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def transport(self) -> str:
        text = f"docker://{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def public(self) -> PublicName:
        return PublicName(self.registry, self.repository, self.tag or str(self.digest))


def parse_registry_ref(text: str) -> RegistryRef:
    """DUCC's ``ParseImage`` rules, shared with the wishlist check: host literal, a tag or a
    digest required; a wildcard tag names no single image."""
    body = text.removeprefix("docker://").removeprefix("https://")
    refuse_userinfo(body, "image reference", digest_ok=True)
    try:
        entry = parse_entry(f"https://{body}")
    except EntryError as exc:
        message = exc.message.replace(f"wishlist entry {'https://' + body!r}",
                                      f"image reference {text!r}", 1)
        raise UsageError(message) from None
    if entry.tag and "*" in entry.tag:
        raise UsageError(f"image reference {text!r}: a wildcard tag names no single image")
    return RegistryRef(entry.registry, entry.repository, entry.tag, entry.digest)


def parse_public_name(text: str) -> PublicName:
    ref = parse_registry_ref(text)
    if ref.tag is None:
        raise UsageError(f"--name {text!r} needs a tag")
    return ref.public


def is_registry_ref(text: str) -> bool:
    if text.startswith(("docker://", "https://")):
        return True
    first, sep, _ = text.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


@dataclass(frozen=True)
class PlatformImage:
    """One manifest to unpack and its platform directory name (``arm64:v8``)."""

    arch_dir: str
    arch: str
    manifest: Manifest

    @property
    def manifest_digest(self) -> str:
        return self.manifest.digest


@dataclass(frozen=True)
class Source:
    layout: Path
    name: PublicName
    images: list[PlatformImage]
    multi: bool  # came from an index (or several store architectures)

    def blob(self, digest: str) -> Path:
        return blob_path(self.layout, digest)

    def config(self, image: PlatformImage) -> ImageConfig:
        """The image's configuration, verified against the manifest's config descriptor."""
        desc = image.manifest.config
        doc, where = read_blob_document(self.layout, desc, "config")
        return parse_config(doc, desc.digest, where)


def _manifest(layout: Path, desc: Descriptor) -> Manifest:
    doc, where = read_blob_document(layout, desc, "manifest")
    if is_index(doc, desc):
        raise LayoutError(f"{where}: an index inside an index is not supported (expected an "
                          "image manifest)")
    return parse_manifest(doc, desc.digest, where)


def _platform_images(layout: Path, desc: Descriptor, arch_default: str = "amd64"
                     ) -> tuple[list[PlatformImage], bool]:
    """The manifests below descriptor ``desc``: itself, or an index's usable entries."""
    doc, where = read_blob_document(layout, desc, "manifest")
    if is_index(doc, desc):
        out = []
        for entry in descriptors(doc, "manifests", where):
            arch = entry.platform.architecture if entry.platform else "unknown"
            if arch == "unknown" or not blob_path(layout, entry.digest).exists():
                continue  # attestations; entries the copy did not bring
            variant = entry.platform.variant if entry.platform else None
            arch, name = arch_dir(arch, variant, where)
            out.append(PlatformImage(name, arch, _manifest(layout, entry)))
        return out, True
    manifest = parse_manifest(doc, desc.digest, where)
    config_doc, config_where = read_blob_document(layout, manifest.config, "config")
    config = parse_config(config_doc, manifest.config.digest, config_where)
    arch, name = arch_dir(config.architecture or arch_default, config.variant, config_where)
    return [PlatformImage(name, arch, manifest)], False


def layout_refs(layout: Path) -> dict[str, Descriptor]:
    """ref-name annotation -> descriptor, for every image listed in the layout's index.json."""
    index, where = read_index_json(layout)
    refs: dict[str, Descriptor] = {}
    for desc in descriptors(index, "manifests", where):
        ref = desc.annotations.get(REF_ANNOTATION)
        if ref:
            refs[ref] = desc
    return refs


def _select(images: list[PlatformImage], platform: str | None, what: str
            ) -> list[PlatformImage]:
    if not images:
        raise UsageError(f"{what} has no image with a known architecture")
    if platform is None:
        return images
    parts = platform.split("/")
    arch = parts[1] if len(parts) > 1 else parts[0]
    variant = parts[2] if len(parts) > 2 else None
    chosen = [i for i in images if i.arch == arch
              and (variant is None or i.arch_dir == f"{arch}:{variant}")]
    if not chosen:
        have = ", ".join(i.arch_dir for i in images)
        raise UsageError(f"{what} has no {platform} image (it has: {have})")
    return chosen[:1]


def from_layout(layout: Path, ref: str | None, platform: str | None,
                name: PublicName) -> Source:
    index, where = read_index_json(layout)
    descs = descriptors(index, "manifests", where)
    if ref:
        descs = [d for d in descs if d.annotations.get(REF_ANNOTATION) == ref]
        if not descs:
            raise UsageError(f"no image {ref!r} in the OCI layout {layout}")
    elif len(descs) != 1:
        raise UsageError(f"the OCI layout {layout} holds {len(descs)} images: name one "
                         "with oci:PATH:REF")
    images, multi = _platform_images(layout, descs[-1])
    chosen = _select(images, platform, f"oci:{layout}:{ref or ''}")
    return Source(layout, name, chosen, multi)


def from_store(store: Store, image: str, platform: str | None,
               name: PublicName | None) -> Source:
    refs = layout_refs(store.root) if (store.root / "index.json").exists() else {}
    if image in refs:
        base = image
        for arch in UNAME:
            if image.endswith(f"-{arch}"):
                base = image[:-len(arch) - 1]
        public = name or PublicName("localhost", f"lamina/{base}", "latest")
        return from_layout(store.root, image, platform, public)
    found = [(arch, f"{image}-{arch}") for arch in UNAME if f"{image}-{arch}" in refs]
    if not found:
        raise UsageError(f"no image {image!r} in the store {store.root} (build it first, or "
                         "give oci:PATH:REF or a registry reference)")
    public = name or PublicName("localhost", f"lamina/{image}", "latest")
    images: list[PlatformImage] = []
    for _, ref in found:
        sub = from_layout(store.root, ref, None, public)
        images.extend(sub.images)
    chosen = _select(images, platform, f"store image {image}")
    return Source(store.root, public, chosen, len(found) > 1)


def cache_ref(ref: RegistryRef) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", ref.transport.removeprefix("docker://"))


def from_registry(store: Store, text: str, platform: str | None, name: PublicName | None,
                  *, tls_verify: bool, cert_dir: Path | None, authfile: Path | None) -> Source:
    """Copy the reference (every platform) into the cache layout with skopeo, then read it."""
    ref = parse_registry_ref(text)
    cache = Store(store.root / "lamina" / "unpack-cache")
    local = cache_ref(ref)
    # skopeo gets only the credentials bound to this repository (lamina.credentials)
    credentials = CredentialStore.load(targets=unpack_registries(), authfile=authfile)
    with credentials.skopeo_authfile(ref.registry, ref.repository) as auth, cache.locked():
        pull(ref.transport, cache.transport(local), tls_verify, cert_dir, auth,
             what=f"copying {ref.transport}", all_images=True)
    return from_layout(cache.root, local, platform, name or ref.public)
