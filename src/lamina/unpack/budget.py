"""The cap on what one ``lamina unpack`` may write: ``--max-bytes``, counted on uncompressed
bytes.

A layer is gzip data from the network, and a few kilobytes of it can inflate to terabytes (a
"gzip bomb"); without a cap it fills the disk. The cap counts the bytes of regular files the
unpack writes, over all layers and platforms of the command. It is enforced twice:

* before a layer writes anything: the first pass over each layer (which also verifies its
  digests) adds up the sizes of the files the second pass will write, and refuses the layer as
  soon as the total would pass the cap; a bomb is stopped after reading one tar header. The
  uncompressed stream of one layer may not exceed the cap either (a bomb hidden in padding);
* while writing, as a second line of defence.

The default is the smaller of :data:`DEFAULT_CAP` (64 GiB, several times the largest images on
unpacked.cern.ch) and the free space of the target's filesystem when the unpack starts.
Sizes accept the suffixes K, M, G, T (powers of 1024, an optional ``i``/``iB``/``B`` after
them): ``20G`` is 20 GiB.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lamina.errors import UsageError
from lamina.unpack.rootfs import LayerError

DEFAULT_CAP = 64 << 30
UNITS = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


class TooLargeError(LayerError):
    """Unpacking would write more than the cap allows."""


def human(size: int) -> str:
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"


def parse_size(text: str, option: str = "--max-bytes") -> int:
    """``20G`` -> 21474836480; a usage error for anything else."""
    match = SIZE_RE.match(text)
    if not match:
        raise UsageError(f"{option} {text[:40]!r}: expected a size in bytes, optionally with "
                         "a suffix K, M, G or T (powers of 1024), e.g. 20G")
    number, unit = match.groups()
    size = int(float(number) * (1 << UNITS[unit.lower()]))
    if size <= 0:
        raise UsageError(f"{option} {text[:40]!r}: the size must be positive")
    return size


def free_space(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem of ``path`` (or of its
    nearest existing ancestor)."""
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stat = os.statvfs(probe)
    return stat.f_bavail * stat.f_frsize


@dataclass
class ByteBudget:
    """What may still be written, and where the limit came from (for the message)."""

    limit: int
    source: str
    written: int = 0

    def refuse(self, digest: str, why: str) -> TooLargeError:
        return TooLargeError(f"layer {digest}: {why} the unpack limit of {human(self.limit)} "
                             f"({self.source}); the partial flat was removed")

    def check_plan(self, planned: int, digest: str) -> None:
        """The layer about to be written would write ``planned`` bytes."""
        if self.written + planned > self.limit:
            raise self.refuse(digest, "its files would bring the bytes written past")

    def charge(self, size: int, digest: str) -> None:
        self.written += size
        if self.written > self.limit:
            raise self.refuse(digest, "writing it went past")


def budget_for(max_bytes: str | None, target: Path) -> ByteBudget:
    if max_bytes is not None:
        return ByteBudget(parse_size(max_bytes), f"--max-bytes {max_bytes}")
    free = free_space(target)
    if free < DEFAULT_CAP:
        return ByteBudget(free, f"the free space on the filesystem of {target}; --max-bytes "
                                "sets another limit")
    return ByteBudget(DEFAULT_CAP, "the default; --max-bytes sets another limit")
