"""apptainer's default mounts for a sandbox directory, in its order, placed on the underlay.

``internal/pkg/runtime/engine/apptainer/container_linux.go`` (``create``) lists the mounts by
tag and ``internal/pkg/util/fs/mount/mount_linux.go`` (``authorizedTags``) mounts the tags in
this order; the defaults are those of ``pkg/util/apptainerconf/config.go`` (``mount dev =
yes``, ``mount proc/sys/tmp/home = yes``, ``mount hostfs = no``, ``bind path =
/etc/localtime,/etc/hosts``, ``config passwd/group/resolv_conf = yes``):

* dev (``addDevMount``): the host ``/dev``; with ``--contain`` a minimal ``/dev`` (bubblewrap's
  ``--dev``: null, zero, full, random, urandom, tty, pts, shm, fd, std*), ``/dev/mqueue`` with
  the IPC namespace of ``--containall``;
* binds (``addBindsMount``): ``/etc/localtime`` and ``/etc/hosts`` from the host, skipped when
  the host has none (``skip-on-error``), with and without ``--contain``;
* kernel (``addKernelMount``): ``/proc`` of the host (a new one in the PID namespace of
  ``--containall``), ``/sys`` of the host;
* home (``addHomeMount``, ``getHomePaths``): the host home (the passwd entry's directory) at
  the same path, at ``/root`` for uid 0; an empty directory instead with ``--contain`` or when
  the host home is missing; nothing with ``--no-home`` or a home of ``/``;
* tmp (``addTmpMount``): the host ``/tmp`` and ``/var/tmp`` (``/var/tmp`` skipped when it
  resolves to the container's ``/tmp``); private 1777 directories with ``--contain``;
* files (``addIdentityMount``, ``addResolvConfMount``): ``/etc/passwd``, ``/etc/group``
  (:mod:`lamina.sandbox.identity`) and the host ``/etc/resolv.conf``;
* userbinds (``addUserbindsMount``): ``--bind``, shallowest destination first
  (``PointList.Less``), a repeated destination skipped with a warning, ``/dev/X`` binds that
  need ``X`` on both sides and may replace the minimal ``/dev`` with the host's;
* cwd (``createCwdDir``, ``addCwdMount``): the host's current directory at the same path unless
  ``--contain``, it is ``/`` or a system directory, it crosses a symlink of the image, or it is
  already visible there (same inode through ``$HOME`` or a bind).

Deliberate difference: ``/etc/hosts``, ``/etc/localtime`` and ``/etc/resolv.conf`` are bound
read-only (apptainer binds them writable, which for root means writing the host's files).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from lamina.errors import UsageError
from lamina.sandbox import identity
from lamina.sandbox.bindspec import BindSpec
from lamina.sandbox.imagefs import read_image_file
from lamina.sandbox.underlay import Mount, Underlay

# createCwdDir: "Not mounting CWD within operating system directory"
SYSTEM_DIRS = ("/", "/etc", "/bin", "/mnt", "/usr", "/var", "/opt", "/sbin", "/lib", "/lib64")
VIRTUAL_PREFIXES = ("/sys", "/proc", "/dev")  # HasPrefix, so /system counts too, as there


@dataclass(frozen=True)
class Options:
    binds: list[BindSpec]
    contain: bool = False
    containall: bool = False
    no_home: bool = False


@dataclass(frozen=True)
class Host:
    uid: int
    home_source: str
    home_dest: str
    cwd: str  # Go's os.Getwd(): $PWD when it names the current directory


def _optional(underlay: Underlay, mount: Mount) -> None:
    """A mount apptainer marks ``skip-on-error``: left out when it cannot be placed."""
    if os.path.exists(mount.source):
        with contextlib.suppress(UsageError):
            underlay.add(mount)


def _identity(underlay: Underlay, host: Host, warn: Callable[[str], None]) -> None:
    for path in ("/etc/passwd", "/etc/group"):
        loc = underlay.locate(path)
        data = read_image_file(underlay.rootfs, loc.path) if loc.where == "image" else None
        try:
            content = (identity.passwd(data, host.home_dest, host.uid) if path == "/etc/passwd"
                       else identity.group(data, host.uid))
        except identity.IdentityError as exc:
            warn(str(exc))
            continue
        underlay.add(Mount("data", path, what=path, data=content))


def _user_binds(underlay: Underlay, opts: Options, warn: Callable[[str], None]) -> None:
    contain = opts.contain or opts.containall
    seen: set[str] = set()
    ordered = sorted(opts.binds, key=lambda b: (os.path.normpath(b.destination).count("/"),
                                                len(os.path.normpath(b.destination))))
    for bind in ordered:
        what = f"--bind {bind.spec!r}"
        if not os.path.exists(bind.source):
            raise UsageError(f"{what}: {bind.source} does not exist on the host")
        dest = bind.destination
        kind = "ro-bind" if bind.readonly else "bind"
        if dest.startswith("/dev") and bind.source.startswith("/dev"):
            if dest != bind.source:
                warn(f"Skipping {bind.source} bind mount: source and destination must be "
                     "identical when binding to /dev")
                continue
            kind = "dev-bind"
            if contain and bind.source == "/dev":  # "--bind /dev" replaces the minimal /dev
                dest = "/dev"
        if dest in seen:
            warn(f"While bind mounting '{bind.source}:{dest}': destination is already in the "
                 "mount point list")
            continue
        seen.add(dest)
        underlay.add(Mount(kind, dest, bind.source, what=what))


def _cwd(underlay: Underlay, host: Host) -> None:
    cwd = os.path.normpath(host.cwd) if host.cwd else ""
    if not cwd.startswith("/") or cwd == "/":
        return
    for path in {cwd, os.path.realpath(cwd)}:
        if path in SYSTEM_DIRS or path.startswith(VIRTUAL_PREFIXES):
            return
    loc = underlay.locate(cwd)
    if loc.blocked:
        return  # a file of the image on the way: nothing to mount on
    if loc.path != cwd and loc.where == "image":
        return  # "pathContainerResolved != path": a symlink of the image on the way
    if loc.exists:
        if not loc.is_dir or (loc.where == "host" and os.path.samefile(loc.host, cwd)):
            return  # a file there, or already the same directory (through $HOME, a bind)
    elif loc.where != "image" and loc.where != "scratch":
        return  # inside a host bind where it does not exist: apptainer does not mount it
    underlay.add(Mount("bind", cwd, cwd, what=f"current directory {cwd}"))


def place(underlay: Underlay, opts: Options, host: Host, warn: Callable[[str], None]) -> None:
    """Every default and requested mount, in apptainer's tag order."""
    contain = opts.contain or opts.containall
    if contain:
        underlay.add(Mount("dev", "/dev", what="/dev"))
        if opts.containall:
            underlay.add(Mount("mqueue", "/dev/mqueue", what="/dev/mqueue"))
    else:
        underlay.add(Mount("dev-bind", "/dev", "/dev", what="/dev"))
    for path in ("/etc/localtime", "/etc/hosts"):
        _optional(underlay, Mount("ro-bind", path, path, what=path))
    if opts.containall:
        underlay.add(Mount("proc", "/proc", what="/proc"))
    else:
        underlay.add(Mount("bind", "/proc", "/proc", what="/proc"))
    underlay.add(Mount("bind", "/sys", "/sys", what="/sys"))
    if not opts.no_home and host.home_dest != "/":
        if contain or not os.path.isdir(host.home_source):
            underlay.add(Mount("tmpfs", host.home_dest, what="home directory"))
        else:
            underlay.add(Mount("bind", host.home_source, host.home_dest, what="home directory"))
    same_tmp = underlay.locate("/var/tmp").path == underlay.locate("/tmp").path
    for path in ("/tmp", "/var/tmp"):
        if path == "/var/tmp" and same_tmp:
            continue
        if contain:
            underlay.add(Mount("tmpfs", path, what=path, perms=0o1777))
        elif os.path.isdir(path):
            underlay.add(Mount("bind", path, path, what=path))
    _identity(underlay, host, warn)
    _optional(underlay, Mount("ro-bind", "/etc/resolv.conf", "/etc/resolv.conf",
                              what="/etc/resolv.conf"))
    _user_binds(underlay, opts, warn)
    if not contain:
        _cwd(underlay, host)
