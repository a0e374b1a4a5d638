"""The ``/etc/passwd`` and ``/etc/group`` apptainer binds into the container.

With ``config passwd = yes`` and ``config group = yes`` (the defaults,
``pkg/util/apptainerconf/config.go``), ``container_linux.go`` (``addIdentityMount``) binds
copies of the image's files with the calling user added, so ``whoami`` and ``id`` work:

* ``internal/pkg/util/fs/files/passwd.go`` (``Passwd``): the image's lines kept; the line of
  the user's uid rewritten with the host name, gecos and the container home (uid 0 keeps the
  image's name and gecos), or the host entry appended; a line that does not parse (7 fields,
  numeric uid and gid) drops the whole bind with a warning;
* ``group.go`` (``Group``): the image's file, then ``name:x:gid:user`` for each of the user's
  groups (``getgroups`` plus the primary group), without repeating a line added here.

A missing file in the image means no bind (``passwd file doesn't exist in container``).
"""

from __future__ import annotations

import grp
import os
import pwd


class IdentityError(Exception):
    """Why a file is not bound (apptainer logs it as a warning and goes on)."""


def passwd(image_passwd: bytes | None, home: str, uid: int) -> bytes:
    if image_passwd is None:
        raise IdentityError("passwd file doesn't exist in container, not updating")
    try:
        me = pwd.getpwuid(uid)
    except KeyError:
        raise IdentityError(f"no passwd entry for uid {uid} on the host") from None
    home_dir = home or me.pw_dir
    # bufio.ScanLines: split at \n, a trailing \r dropped
    lines = [line.removesuffix("\r") for line in image_passwd.decode(errors="replace").split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    found = False
    for i, line in enumerate(lines):
        if not line:
            continue
        fields = line.split(":")
        if len(fields) != 7 or not fields[2].isdigit() or not fields[3].isdigit():
            raise IdentityError("failed to parse this /etc/passwd line in container: "
                                f"{line!r}")
        if int(fields[2]) == uid:
            name, gecos = (fields[0], fields[4]) if uid == 0 else (me.pw_name, me.pw_gecos)
            lines[i] = f"{name}:x:{uid}:{fields[3]}:{gecos}:{home_dir}:{fields[6]}"
            found = True
            break
    if not found:
        lines.append(f"{me.pw_name}:x:{me.pw_uid}:{me.pw_gid}:{me.pw_gecos}:{home_dir}:"
                     f"{me.pw_shell}")
    return ("\n".join(lines) + "\n").encode()


def group(image_group: bytes | None, uid: int) -> bytes:
    if image_group is None:
        raise IdentityError("group file doesn't exist in container, not updating")
    try:
        me = pwd.getpwuid(uid)
        grp.getgrgid(me.pw_gid)
    except KeyError:
        raise IdentityError(f"no passwd or group entry for uid {uid} on the host") from None
    groups = os.getgroups()
    if me.pw_gid not in groups:
        groups.append(me.pw_gid)
    content = image_group
    if content and not content.endswith(b"\n"):
        content += b"\n"
    added: set[str] = set()
    for gid in groups:
        try:
            entry = grp.getgrgid(gid)
        except KeyError:
            continue  # "Skipping GID %d as group entry doesn't exist"
        line = f"{entry.gr_name}:x:{entry.gr_gid}:{me.pw_name}\n"
        if line not in added:
            added.add(line)
            content += line.encode()
    return content
