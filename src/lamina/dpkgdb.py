"""Registering unpacked Debian packages in the root's dpkg database, as dpkg itself would.

A ``debs:`` rootfs is assembled with ``dpkg-deb -x``, which only unpacks files: without a
database entry ``dpkg-query`` (and any SBOM scanner reading ``/var/lib/dpkg/status``) finds no
packages, and a later ``apt-get install`` in a child image would not know they are there.
So lamina writes what ``dpkg --unpack`` + ``--configure`` leave behind, following dpkg's own
source (github:guillemj/dpkg):

- ``/var/lib/dpkg/status``: one stanza per package, ``Status: install ok installed``, the
  control fields in the order of ``fieldinfos[]`` (lib/dpkg/parse.c; written by
  ``varbuf_stanza`` in lib/dpkg/dump.c: known fields first in that order, with their
  canonical names, booleans only when ``yes``, ``Multi-Arch`` unless ``no``, dependency fields
  on one line; then every other control field in the control file's order), stanzas sorted
  by name and architecture (``writedb_stanzas``: ``pkg_sorter_by_nonambig_name_arch``), each
  followed by an empty line. ``Conffiles`` lists each conffile (deb-conffiles(5): those
  without a flag that exist in the package) with the MD5 of the file as shipped.
- ``info/<name>.md5sums`` from the archive when the package ships none, as dpkg does.
- ``/var/lib/dpkg/info/<name>.list``: the package's paths in archive order, each as dpkg
  names it (``fsys_hash_find_node``: leading ``/`` and ``./`` dropped, one ``/`` added, so
  the archive's ``./`` is ``/.``); and every other control member but ``control``
  (``pkg_infodb_update`` in src/main/unpack.c: md5sums, conffiles, maintainer scripts, ...),
  as ``info/<name>.<member>``, or ``<name>:<arch>.<member>`` for ``Multi-Arch: same``
  (``pkg_infodb_get_file``, lib/dpkg/db-ctrl-format.c), so ``info/format`` says ``1``.

dpkg's run-time files (``lock``, ``status-old``, ``triggers/``, ``updates/``) are not part of a
registration; a root that carries dpkg gets its directories from the dpkg package itself.
Nothing here depends on time or on the order the files were downloaded in, and every file
and directory gets a fixed mode: the same packages always give the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from lamina.confine import make_dirs
from lamina.errors import ToolError
from lamina.procs import run_logged

STATUS = "var/lib/dpkg/status"
INFO = "var/lib/dpkg/info"

# lib/dpkg/parse.c fieldinfos[], the order dpkg writes a stanza in
FIELD_ORDER = (
    "Package", "Essential", "Protected", "Status", "Priority", "Section", "Installed-Size",
    "Origin", "Maintainer", "Bugs", "Architecture", "Multi-Arch", "Source", "Version",
    "Config-Version", "Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
    "Suggests", "Breaks", "Conflicts", "Enhances", "Conffiles", "Filename", "Size", "MD5sum",
    "Description", "Triggers-Pending", "Triggers-Awaited",
)
DEPENDENCY_FIELDS = frozenset({"Replaces", "Provides", "Depends", "Pre-Depends", "Recommends",
                               "Suggests", "Breaks", "Conflicts", "Enhances"})
BOOLEAN_FIELDS = frozenset({"Essential", "Protected"})
# what a control file cannot say about an installed package: dpkg keeps its own state there
STATE_FIELDS = frozenset({"Status", "Config-Version", "Conffiles", "Filename", "Size",
                          "MD5sum", "Triggers-Pending", "Triggers-Awaited"})
_CANONICAL = {name.lower(): name for name in FIELD_ORDER}


@dataclass(frozen=True)
class Unpacked:
    """One package as ``dpkg-deb`` gave it: control fields, control members, its paths."""

    fields: list[tuple[str, str]]  # (name as written, value) in control order
    members: dict[str, Path]  # control member name -> extracted file
    paths: list[str]  # archive member names, in archive order
    digests: dict[str, str]  # path as dpkg names it -> MD5 of a regular file (or hardlink)

    def field(self, name: str) -> str:
        return next((v for k, v in self.fields if k.lower() == name.lower()), "")

    @property
    def name(self) -> str:
        return self.field("Package")

    @property
    def arch(self) -> str:
        return self.field("Architecture")

    @property
    def info_name(self) -> str:
        same = self.field("Multi-Arch").strip().lower() == "same"
        return f"{self.name}:{self.arch}" if same else self.name


def parse_control(text: str) -> list[tuple[str, str]]:
    """The fields of a deb822 control stanza (deb-control(5)), continuation lines kept."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if line[:1] in (" ", "\t"):
            if not fields:
                raise ToolError(f"control file starts with a continuation line: {line!r:.60}")
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        elif line.strip():
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ToolError(f"control file line is not 'Field: value': {line!r:.60}")
            fields.append((name.strip(), value.strip()))
    return [(name, value.rstrip()) for name, value in fields]


def unpack(deb: Path, root: Path, work: Path, log: Path) -> Unpacked:
    """Extract ``deb`` into ``root`` (``dpkg-deb -x``) and read what registering it needs."""
    run_logged(["dpkg-deb", "-x", str(deb), str(root)], log, what=f"extract {deb.name}")
    control_dir = work / "control"
    run_logged(["dpkg-deb", "-e", str(deb), str(control_dir)], log,
               what=f"read the control members of {deb.name}")
    data = work / "data.tar"
    run_logged(["dpkg-deb", "--fsys-tarfile", str(deb)], log, stdout=data,
               what=f"list the files of {deb.name}")
    paths: list[str] = []
    digests: dict[str, str] = {}
    with tarfile.open(data) as tar:
        for member in tar:
            paths.append(member.name)
            if member.isreg():
                handle = tar.extractfile(member)
                assert handle is not None
                digests[list_name(member.name)] = hashlib.md5(handle.read()).hexdigest()
            elif member.islnk() and list_name(member.linkname) in digests:
                digests[list_name(member.name)] = digests[list_name(member.linkname)]
    data.unlink()
    members = {p.name: p for p in sorted(control_dir.iterdir())
               if p.is_file() and not p.is_symlink()}
    if "control" not in members:
        raise ToolError(f"{deb.name} has no control file")
    fields = parse_control(members["control"].read_text(encoding="utf-8"))
    unpacked = Unpacked(fields, members, paths, digests)
    if not unpacked.name or not unpacked.field("Version"):
        raise ToolError(f"{deb.name}: control file has no Package or Version")
    return unpacked


def list_name(member: str) -> str:
    """A tar member name as dpkg records it in ``info/*.list``."""
    name = member
    while name.startswith("/") or name.startswith("./"):
        name = name[1:] if name.startswith("/") else name[2:]
    return "/" + name.rstrip("/") if name not in ("", ".") else "/."


def stanza(package: Unpacked) -> str:
    """The package's ``status`` stanza, as dpkg writes it for an installed package."""
    known: dict[str, str] = {}
    extra: list[tuple[str, str]] = []
    for name, value in package.fields:
        canonical = _CANONICAL.get(name.lower())
        if canonical is None:
            extra.append((name, value))
        elif canonical not in STATE_FIELDS:
            known[canonical] = value
    known["Status"] = "install ok installed"
    conffiles = _conffiles(package)
    if conffiles:
        known["Conffiles"] = "\n" + "\n".join(conffiles)
    lines = []
    for name in (f for f in FIELD_ORDER if f in known):
        value = known[name]
        if name in BOOLEAN_FIELDS and value.lower() != "yes":
            continue
        if name == "Multi-Arch" and value.lower() == "no":
            continue
        if name in BOOLEAN_FIELDS or name == "Multi-Arch":
            value = value.lower()
        if name in DEPENDENCY_FIELDS:
            value = " ".join(value.split())
        lines.append(f"{name}:{value}" if name == "Conffiles" else f"{name}: {value}")
    lines += [f"{name}: {value}" for name, value in extra]
    return "\n".join(lines) + "\n"


def _conffiles(package: Unpacked) -> list[str]:
    member = package.members.get("conffiles")
    if member is None:
        return []
    out = []
    for line in member.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) != 1:  # a flagged entry (remove-on-upgrade) is not in the package
            continue
        digest = package.digests.get(list_name(words[0]))
        if digest is not None:  # deb-conffiles(5): one missing from the package is ignored
            out.append(f" {words[0]} {digest}")
    return out


def md5sums(package: Unpacked) -> bytes:
    """The ``md5sums`` dpkg writes for a package that ships none (``write_filehash_except``
    in lib/dpkg/db-fsys-digest.c): each regular file's MD5 and path, in archive order."""
    seen = [list_name(p) for p in package.paths]
    return "".join(f"{package.digests[n]}  {n[1:]}\n" for n in seen
                   if n in package.digests).encode()


def register(root: Path, packages: list[Unpacked]) -> None:
    """Write the dpkg database of ``root`` for ``packages`` (all of its packages)."""
    info = make_dirs(root, INFO)
    ordered = sorted(packages, key=lambda p: (p.name, p.arch))
    for package in ordered:
        base = package.info_name
        _write(info / f"{base}.list",
               "".join(list_name(p) + "\n" for p in package.paths).encode(), 0o644)
        for name, source in package.members.items():
            # pkg_infodb_update: not the control file, nothing with a dot, not a list
            if name in ("control", "list") or "." in name:
                continue
            # the member's own mode, as dpkg renames it into place (dpkg-deb -e does not
            # apply the umask: lib/dpkg/program.c sets 022)
            _write(info / f"{base}.{name}", source.read_bytes(),
                   stat.S_IMODE(source.stat().st_mode))
        if "md5sums" not in package.members:
            _write(info / f"{base}.md5sums", md5sums(package), 0o644)
    _write(info / "format", b"1\n", 0o644)
    status = "".join(stanza(p) + "\n" for p in ordered)
    _write(make_dirs(root, os.path.dirname(STATUS)) / "status", status.encode(), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    if path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    os.chmod(path, mode)
