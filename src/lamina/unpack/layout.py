"""The directory layout of ``unpacked.cern.ch``, reproduced under an output directory ``R``.

::

    R/.flat/<c0c1>/<c>/                     rootfs + /.singularity.d; c = config digest hex
    R/<registry>/<repo>:<tag>            -> ../…/.flat/<c0c1>/<c>           (relative)
    R/.multiarch/<arch>[:<variant>]/<registry>/<repo>:<tag> -> ../…/.flat/…  (index only)
    R/.multiarch/{x86_64,aarch64,…}      -> <arch dir>                       (uname aliases)
    R/.lamina/flats/<c>.json                lamina's record: config, layers, summary

For an index (or a store image with several architectures) every platform gets its flat and its
``.multiarch`` link, and the public path points at ``.multiarch/<uname -m>/…``: on CVMFS it is a
variant symlink with ``$(CVMFS_ARCH)`` that only the client expands, so a plain link to this
host's architecture stands in for it. When one platform is unpacked from an index
(``--platform``, or an index with one usable entry), the public path points straight at its flat,
as DUCC does for its default amd64 pick.

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
from lamina.platforms import UNAME
from lamina.unpack import singularity
from lamina.unpack.budget import ByteBudget
from lamina.unpack.documents import ImageConfig, LayoutError
from lamina.unpack.layers import LayerRef, LayerStats, apply_layers
from lamina.unpack.removal import remove_path
from lamina.unpack.rootfs import RootFS
from lamina.unpack.source import PlatformImage, PublicName, Source

FOREIGN_MARKERS = ("foreign", "nondistributable")
RECORD_LIMIT = 16 * MiB  # a record holds the config (at most 4 MiB) and the summary
# uname -m → OCI architecture, for the $(CVMFS_ARCH) aliases (cvmfs#4170)
ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386",
           "armhf": "arm", "armel": "arm"}


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
    target: str
    flats: list[FlatResult]


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
    link.parent.mkdir(parents=True, exist_ok=True)
    text = os.path.relpath(target, link.parent)
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
    return text


def host_arch_dir() -> str:
    machine = host_platform.machine()
    return ALIASES.get(machine, machine)


def _aliases(out: Path, arch_dirs: list[str]) -> None:
    """``.multiarch/x86_64 -> amd64`` and friends, for the arch directories that exist."""
    base = out / ".multiarch"
    present = {d.name for d in base.iterdir() if d.is_dir() and not d.is_symlink()}
    wanted = dict(ALIASES)
    wanted.update({uname: arch for arch, uname in UNAME.items()})
    wanted["arm64"] = "arm64:v8"
    for alias, arch in wanted.items():
        candidates = [arch] if arch in present else sorted(
            p for p in present if p.split(":")[0] == arch)
        if alias in present or not candidates or candidates[0] == alias:
            continue
        relative_symlink(base / alias, base / candidates[0])


def unpack(source: Source, out: Path, budget: ByteBudget | None = None) -> UnpackResult:
    """Build every chosen platform's flat and the links analysts use."""
    out.mkdir(parents=True, exist_ok=True)
    out = out.resolve()
    name: PublicName = source.name
    public = out / name.relpath
    flats = [build_flat(out, source, image, budget) for image in source.images]
    if not source.multi:
        target = relative_symlink(public, flats[0].path)
        return UnpackResult(str(name), public, target, flats)
    for flat in flats:
        relative_symlink(out / ".multiarch" / flat.arch_dir / name.relpath, flat.path)
    _aliases(out, [f.arch_dir for f in flats])
    if len(flats) == 1:
        target = relative_symlink(public, flats[0].path)
    else:
        machine = host_platform.machine()
        chosen = machine if (out / ".multiarch" / machine).exists() else flats[0].arch_dir
        target = relative_symlink(public, out / ".multiarch" / chosen / name.relpath)
    return UnpackResult(str(name), public, target, flats)
