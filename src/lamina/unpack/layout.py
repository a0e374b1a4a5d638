"""The directory layout of ``unpacked.cern.ch``, reproduced under an output directory ``R``.

::

    R/.flat/<c0c1>/<c>/                     rootfs + /.singularity.d; c = config digest hex
    R/<registry>/<repo>:<tag>            -> ../…/.flat/<c0c1>/<c>           (master)
    R/.multiarch/<arch>[:<variant>]/<registry>/<repo>:<tag> -> ../…/.flat/…  (multiarch)
    R/<registry>/<repo>:<tag>            -> ../…/.multiarch/<CVMFS_ARCH>/…   (multiarch)
    R/.multiarch/{x86_64,aarch64,…}      -> <arch dir>                       (multiarch)
    R/.lamina/flats/<c>.json                lamina's record: config, layers, summary

What is converted and linked is DUCC's choice for the sync branch (:mod:`lamina.unpack.ducc`):
on ``master`` an index gives its amd64 flat, linked straight from the public path, and no
``.multiarch`` tree; on ``multiarch`` every platform gets its flat and its ``.multiarch`` link,
the alias table is written, and the public path is DUCC's variant symlink
``../…/.multiarch/$(CVMFS_ARCH:-amd64)/…``. Only a CVMFS client expands ``$(CVMFS_ARCH)``
(to its ``uname -m``), so here it is written expanded, for this host's ``uname -m`` or for the
``--platform`` asked for, and the raw target is reported.

A flat is built in a temporary sibling directory and renamed into place, and its record in
``R/.lamina/flats`` is written last (atomically): a flat with a record is complete. It is
reused only when its record names the same config digest, layer digests and DiffIDs as the
manifest being unpacked (whose config was verified against its digest first); otherwise it is
rebuilt from verified layers and replaces the old one. A flat without a record (a crash between
the two steps) is rebuilt; a failed build leaves nothing.
``.metadata`` and ``.layers`` (DUCC's change detection and raw layer trees) are not written.
"""

from __future__ import annotations

import os
import platform as host_platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.atomic import write_json
from lamina.errors import LaminaError, UsageError
from lamina.jsondoc import MiB, read_json
from lamina.unpack import ducc, singularity
from lamina.unpack.budget import ByteBudget
from lamina.unpack.documents import ImageConfig, LayoutError
from lamina.unpack.layers import LayerRef, LayerStats, apply_layers
from lamina.unpack.removal import remove_path
from lamina.unpack.rootfs import RootFS
from lamina.unpack.source import PlatformImage, Source

FOREIGN_MARKERS = ("foreign", "nondistributable")
RECORD_LIMIT = 16 * MiB  # a record holds the config (at most 4 MiB) and the summary


@dataclass
class FlatResult:
    arch_dir: str
    config_digest: str
    path: Path
    reused: bool
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnpackResult:
    public: str
    public_path: Path
    target: str  # the public link as written here
    flats: list[FlatResult]
    branch: str
    variant_target: str | None = None  # multiarch: the raw target DUCC writes on CVMFS
    cvmfs_arch: str | None = None  # multiarch: the CVMFS_ARCH it was expanded for here
    resolves: bool = True  # whether the public path leads to a flat


def flat_path(out: Path, config_digest: str) -> Path:
    hexpart = config_digest.partition(":")[2]
    return out / ".flat" / hexpart[:2] / hexpart


def record_path(out: Path, config_digest: str) -> Path:
    return out / ".lamina" / "flats" / f"{config_digest.partition(':')[2]}.json"


def _load_record(path: Path) -> dict[str, Any] | None:
    """A flat's record, or None when it is missing or not a record lamina wrote."""
    try:
        data = read_json(path, limit=RECORD_LIMIT, what="flat record",
                         replace_surrogates=False)
    except LaminaError:
        return None
    return data if isinstance(data, dict) else None


def read_record(flat: Path) -> dict[str, Any] | None:
    """lamina's record of a flat directory (``R/.flat/cc/<c>``), if it has one."""
    flat = flat.resolve()
    if flat.parent.parent.name != ".flat":
        return None
    return _load_record(flat.parent.parent.parent / ".lamina" / "flats" / f"{flat.name}.json")


def _layers(source: Source, image: PlatformImage, config: ImageConfig, stats: LayerStats
            ) -> list[LayerRef]:
    """The layers to apply, each with the digest, size and DiffID it must match."""
    layers = image.manifest.layers
    if len(layers) != len(config.diff_ids):
        raise LayoutError(f"manifest {image.manifest_digest} lists {len(layers)} layers but its "
                          f"config {config.digest} has {len(config.diff_ids)} rootfs.diff_ids; "
                          "refusing an image whose layers do not match its config")
    out = []
    for number, (desc, diff_id) in enumerate(zip(layers, config.diff_ids, strict=True)):
        blob = source.blob(desc.digest)
        if not blob.exists():
            if any(m in desc.media_type for m in FOREIGN_MARKERS):
                stats.note("foreign_layers", desc.digest)  # DUCC skips them too
                continue
            raise LayoutError(f"layer {desc.digest} is missing from {source.layout}")
        out.append(LayerRef(blob, desc.digest, desc.media_type, desc.size, diff_id,
                            f"{number + 1} of {len(layers)}"))
    return out


def _reusable(record: Path, image: PlatformImage, config: ImageConfig) -> dict[str, Any] | None:
    """The record of a finished flat built from exactly these layers, or None: a flat is keyed
    by config digest only, so another image naming the same config with other layers must
    neither reuse nor replace it unverified."""
    saved = _load_record(record)
    if saved is None:
        return None
    layers = [desc.digest for desc in image.manifest.layers]
    if (saved.get("config_digest") != config.digest or saved.get("layers") != layers
            or saved.get("diff_ids") != config.diff_ids):
        return None
    return saved


def build_flat(out: Path, source: Source, image: PlatformImage,
               budget: ByteBudget | None = None) -> FlatResult:
    config = source.config(image)  # verified against the manifest before anything is used
    final = flat_path(out, config.digest)
    record = record_path(out, config.digest)
    if final.is_dir() and not final.is_symlink():
        saved = _reusable(record, image, config)
        if saved is not None:
            stats = saved.get("stats")
            return FlatResult(image.arch_dir, config.digest, final, True,
                              stats if isinstance(stats, dict) else {})
    notes = LayerStats()
    layers = _layers(source, image, config, notes)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name[:12]}-", dir=final.parent))
    try:
        os.chmod(tmp, 0o755)
        applied = apply_layers(tmp, layers, budget=budget,
                               before_finish=lambda rootfs: _inject(rootfs, config.raw))
        applied.notes = {**notes.notes, **applied.notes}
        # whatever is there (a leftover without a record, or another image's flat for this
        # config digest) loses its record first, so no flat is ever described by another's
        record.unlink(missing_ok=True)
        if final.exists() or final.is_symlink():
            remove_path(final)
        os.rename(tmp, final)
    except BaseException:
        remove_path(tmp)
        raise
    data = {"config_digest": config.digest, "manifest_digest": image.manifest_digest,
            "platform": image.arch_dir, "config": config.raw,
            "layers": [desc.digest for desc in image.manifest.layers],
            "diff_ids": config.diff_ids, "stats": applied.as_dict()}
    write_json(record, data)
    return FlatResult(image.arch_dir, config.digest, final, False, applied.as_dict())


def _inject(rootfs: RootFS, config: dict[str, Any]) -> None:
    singularity.inject(rootfs, config)


def relative_symlink(link: Path, target: Path) -> str:
    """Point ``link`` at ``target`` with a relative path, replacing an older symlink; a real
    file or directory at ``link`` is an error, as for DUCC."""
    text = os.path.relpath(target, link.parent)
    replace_symlink(link, text)
    return text


def replace_symlink(link: Path, text: str) -> None:
    """Make ``link`` a symlink to ``text``, atomically replacing an older symlink."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() and not link.is_symlink():
        raise UsageError(f"{link} exists and is not a symlink; not replacing it")
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(text, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)  # Ctrl-C or an error: no temporary link is left behind
        raise


def _aliases(out: Path) -> None:
    """DUCC's ``.multiarch/x86_64 -> amd64`` table (conversion.go archAliases), for the
    architecture directories that exist."""
    base = out / ".multiarch"
    names = [p for p in base.iterdir()] if base.is_dir() else []
    present = {p.name for p in names if p.is_dir()}
    real = {p.name for p in names if p.is_dir() and not p.is_symlink()}
    for alias, arch in ducc.alias_links(present, real).items():
        relative_symlink(base / alias, base / arch)


def choose(source: Source, branch: str, platform: str | None) -> list[PlatformImage]:
    """The manifests DUCC converts from ``source`` on ``branch``, narrowed to ``platform``."""
    listed = ducc.listed(source.images, source.index_entries)
    if not listed:
        if source.index_entries == 1:
            raise LayoutError(
                f"{source.what} is an image index with one entry: DUCC serves nothing at "
                f"{source.name} for it (ducc/lib/image.go FetchManifestList2 keeps an index's "
                "entries only when it has more than one); publish that entry's manifest "
                "itself under the tag")
        raise UsageError(f"{source.what} has no image with a known architecture")
    chosen = ducc.converted(listed, branch)
    if platform is None:
        return chosen
    parts = platform.split("/")
    arch = parts[1] if len(parts) > 1 else parts[0]
    variant = parts[2] if len(parts) > 2 else None

    def fits(image: PlatformImage) -> bool:
        return image.arch == arch and (variant is None or image.arch_dir == f"{arch}:{variant}")

    picked = [i for i in chosen if fits(i)]
    if picked:
        return picked[:1]
    have = ", ".join(i.arch_dir for i in listed)
    if any(fits(i) for i in listed):
        served = ", ".join(i.arch_dir for i in chosen)
        raise UsageError(f"on the {branch} branch DUCC serves only {served} of {source.what} "
                         "(ducc/lib/conversion.go filterManifestList); --branch "
                         f"{ducc.MULTIARCH} previews {platform}")
    raise UsageError(f"{source.what} has no {platform} image (it has: {have})")


def unpack(source: Source, out: Path, budget: ByteBudget | None = None, *,
           branch: str = ducc.MASTER, platform: str | None = None) -> UnpackResult:
    """Build the flats DUCC builds for ``branch`` and the links analysts use."""
    chosen = choose(source, branch, platform)
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    name = source.name
    public = out / name.relpath
    flats = [build_flat(out, source, image, budget) for image in chosen]
    if branch == ducc.MASTER:
        target = ""
        for flat in flats:  # several only when the index has no amd64: the last one wins
            target = relative_symlink(public, flat.path)
        return UnpackResult(str(name), public, target, flats, branch)
    for image, flat in zip(chosen, flats, strict=True):
        link = out / ".multiarch" / image.ducc_dir / name.relpath if image.ducc_dir else public
        relative_symlink(link, flat.path)
    _aliases(out)
    raw = ducc.variant_target(name.relpath.as_posix())
    if platform is not None:
        cvmfs_arch = ducc.CLIENT_UNAME.get(chosen[0].arch, chosen[0].arch)
    else:
        cvmfs_arch = host_platform.machine()
    target = ducc.expand_variant(raw, cvmfs_arch)
    replace_symlink(public, target)
    return UnpackResult(str(name), public, target, flats, branch, raw, cvmfs_arch,
                        public.is_dir())
