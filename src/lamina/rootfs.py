"""Root filesystems made on the host: debootstrap, or a handful of Debian packages.

The root of the tree cannot be pulled (no Docker Hub here, and a pulled base is an
unpinned input anyway), so it is built from Debian's archive and packed into a
deterministic tar: sorted entries, clamped mtimes, numeric owners. Prepared tars are
cached by their inputs, so a rerun after a failure does not repeat the debootstrap.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from lamina import dpkgdb
from lamina.confine import PathRefused, in_root, make_dirs, place_link
from lamina.errors import ToolError
from lamina.layerkinds import RootfsRequest
from lamina.platforms import Platform, host_platform
from lamina.procs import run_logged

DEFAULT_MIRROR = "http://deb.debian.org/debian"

# Files every Debian rootfs carries that differ per run and mean nothing in an image.
VOLATILE = (
    "var/cache/apt/*.bin", "var/lib/apt/lists/*", "var/log/*", "var/cache/ldconfig/aux-cache",
    "var/cache/debconf/*-old", "var/lib/dpkg/*-old", "etc/machine-id", "var/lib/dbus/machine-id",
    "debootstrap", "var/cache/apt/archives/*.deb", "etc/hostname", "etc/resolv.conf",
)
# Paths buildah mounts over in RUN steps; present in the rootfs so no RUN layer adds them.
MOUNT_POINTS = ("proc", "sys", "dev", "tmp", "run", "etc", "run/secrets")
STICKY_DIRS = ("tmp", "var/tmp")
STICKY_MODE = 0o1777
# Files buildah bind-mounts over in RUN steps; empty, so that no RUN layer adds them.
EMPTY_FILES = ("etc/hostname", "etc/resolv.conf", "etc/hosts", "etc/machine-id")
# Tools that write image files get git's and dpkg's umask (dpkg's lib/dpkg/program.c sets
# umask(022) for every dpkg program), not the caller's: debootstrap is a shell script.
IMAGE_UMASK = 0o022


def deterministic_tar(root: Path, out: Path, epoch: int) -> None:
    """Pack ``root`` so that the same tree always gives the same bytes."""
    tmp = out.with_suffix(".partial")

    def clamp(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = min(int(info.mtime), epoch)
        info.uname = ""
        info.gname = ""
        return info

    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            base = Path(dirpath)
            entries = sorted(filenames + [d for d in dirnames if (base / d).is_symlink()])
            rel_dir = base.relative_to(root).as_posix()
            if rel_dir != ".":
                tar.add(base, arcname=rel_dir, recursive=False, filter=clamp)
            for name in entries:
                path = base / name
                arc = (path.relative_to(root)).as_posix()
                tar.add(path, arcname=arc, recursive=False, filter=clamp)
    tmp.replace(out)


def _scrub(root: Path) -> None:
    """Drop what differs per run, then give the root what every image needs, each file and
    directory lamina makes with a fixed mode (never the umask's): mount points 0755, ``tmp``
    and ``var/tmp`` 1777 (world-writable and sticky, as Debian's base-files ships them, and
    as apptainer's and buildah's users expect), empty ``etc`` files 0644. Every path is
    found inside the root as the image sees it (:func:`lamina.confine.in_root`), so a symlink
    among the packages' files can never make this touch the host."""
    for pattern in VOLATILE:
        directory, _, leaf = pattern.rpartition("/")
        try:
            parent = in_root(root, f"{directory}/.") if directory else root
        except PathRefused:
            continue
        if parent is None or not parent.is_dir():
            continue
        for path in sorted(parent.glob(leaf)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    for name in MOUNT_POINTS:
        make_dirs(root, name)
    for name in STICKY_DIRS:
        os.chmod(make_dirs(root, name), STICKY_MODE)
    for name in EMPTY_FILES:
        target = in_root(root, name)
        if target is not None and not os.path.lexists(target):
            target.write_text("")
            os.chmod(target, 0o644)


def prepare(request: RootfsRequest, cache_dir: Path, epoch: int, log: Path) -> Path:
    """The cached tar for ``request``, making it first if needed."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / f"{request.cache_key}.tar"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="lamina-rootfs-", dir=cache_dir) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        if request.method == "debootstrap":
            _debootstrap(request, root, Path(tmp), log, epoch)
        else:
            _debs(request, root, Path(tmp), log)
        try:
            _scrub(root)
        except PathRefused as exc:
            raise ToolError(f"rootfs layer {request.layer}: {exc}") from None
        deterministic_tar(root, out, epoch)
    return out


def _debootstrap(request: RootfsRequest, root: Path, work: Path, log: Path, epoch: int) -> None:
    # With SOURCE_DATE_EPOCH set, the packages' own byte-compilation (py3compile) writes
    # hash-based .pyc files, which the layer hygiene check requires.
    env = {"SOURCE_DATE_EPOCH": str(epoch)}
    if shutil.which("debootstrap") is None:
        raise ToolError("debootstrap not found (run scripts/setup or apt-get install "
                        "debootstrap)")
    opts = request.options
    platform = request.platform
    foreign = platform != host_platform()
    cmd = ["debootstrap", f"--arch={platform.debian_arch}",
           f"--variant={opts.get('variant', 'minbase')}"]
    if opts.get("include"):
        cmd.append("--include=" + ",".join(opts["include"]))
    if opts.get("exclude"):
        cmd.append("--exclude=" + ",".join(opts["exclude"]))
    if foreign:
        cmd.append("--foreign")
    cmd += [opts["suite"], str(root), opts.get("mirror", DEFAULT_MIRROR)]
    run_logged(cmd, log, what=f"debootstrap {opts['suite']} for {platform}", env=env,
               umask=IMAGE_UMASK)
    if foreign:
        # Second stage runs the target's binaries; binfmt_misc with qemu-user (flag F)
        # makes that work inside the chroot.
        run_logged(["chroot", str(root), "/debootstrap/debootstrap", "--second-stage"], log,
                   what=f"debootstrap second stage for {platform} (qemu)", env=env,
                   umask=IMAGE_UMASK)
    apt_conf = make_dirs(root, "etc/apt/apt.conf.d") / "99lamina-no-cache"
    apt_conf.unlink(missing_ok=True)
    apt_conf.write_text('Acquire::Languages "none";\n')
    os.chmod(apt_conf, 0o644)


def _debs(request: RootfsRequest, root: Path, work: Path, log: Path) -> None:
    opts = request.options
    platform: Platform = request.platform
    mirror = opts.get("mirror", DEFAULT_MIRROR)
    suite = opts.get("suite", "bookworm")
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True)
    archives = work / "archives"
    (archives / "partial").mkdir(parents=True)
    sources = work / "sources.list"
    sources.write_text(f"deb [arch={platform.debian_arch}] {mirror} {suite} main\n")
    apt_opts = [
        "-o", f"APT::Architecture={platform.debian_arch}",
        "-o", f"APT::Architectures={platform.debian_arch}",
        "-o", f"Dir::State::Lists={lists}",
        "-o", f"Dir::Etc::SourceList={sources}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::Cache={work}",
        "-o", "Dir::Cache::pkgcache=",
        "-o", "Dir::Cache::srcpkgcache=",
        "-o", f"Dir::Cache::archives={archives}",
        "-o", "Debug::NoLocking=1",
    ]
    run_logged(["apt-get", *apt_opts, "update", "-q"], log,
               what=f"apt index for {platform}")
    debs_dir = work / "debs"
    debs_dir.mkdir()
    packages = [f"{p}:{platform.debian_arch}" for p in opts["packages"]]
    run_logged(["apt-get", *apt_opts, "download", "-q", *packages], log, cwd=debs_dir,
               what=f"download {', '.join(opts['packages'])}")
    unpacked = []
    for index, deb in enumerate(sorted(debs_dir.glob("*.deb"))):
        (work / f"deb-{index}").mkdir()
        unpacked.append(dpkgdb.unpack(deb, root, work / f"deb-{index}", log))
    # registered as dpkg would, so dpkg-query and SBOM scanners see the packages
    dpkgdb.register(root, unpacked)
    for link, target in sorted(opts.get("symlinks", {}).items()):
        # confined to the root being assembled: a package's own symlinks on the way are
        # followed as the image will see them, never out to the host
        try:
            place_link(root, link, target)
        except PathRefused as exc:
            raise ToolError(f"rootfs layer {request.layer}: symlinks: {exc}") from None


def check_tools() -> list[str]:
    missing = [t for t in ("apt-get", "dpkg-deb") if shutil.which(t) is None]
    return missing

