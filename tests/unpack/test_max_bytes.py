"""``--max-bytes``: gzip bombs and oversized images stop in one line naming the layer, before
the bomb is inflated, and nothing of the flat is left."""

from __future__ import annotations

import functools
import hashlib
import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.errors import UsageError
from lamina.unpack.budget import budget_for, human, parse_size
from tests.core.conftest import CliResult
from tests.unpack.oci import Entry, RawLayout, diff_id, f, gz, sha256, single, tar_bytes

Lamina = Callable[..., CliResult]
MiB = 1 << 20


@functools.cache
def bomb(size: int, trailing_zeros: int = 0) -> tuple[bytes, str]:
    """A gzip layer with one file of ``size`` zero bytes (optionally followed by zero padding
    past the tar's end) and its DiffID, made without ever holding the uncompressed bytes: the
    blob is about a thousandth of ``size``."""
    info = tarfile.TarInfo("zeros")
    info.size = size
    info.mtime = 1700000000
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    plain = hashlib.sha256(header)
    out = [packer.compress(header)]
    zeros = b"\0" * MiB
    remaining = size + (-size % 512) + 1024 + trailing_zeros  # data, padding, end of archive
    while remaining > 0:
        chunk = zeros[:min(remaining, MiB)]
        plain.update(chunk)
        out.append(packer.compress(chunk))
        remaining -= len(chunk)
    out.append(packer.flush())
    return b"".join(out), "sha256:" + plain.hexdigest()


def layer(entries: list[Entry]) -> tuple[bytes, str]:
    blob = gz(tar_bytes(entries))
    return blob, diff_id(blob)


def refused(lamina: Lamina, tmp_path: Path, layers: list[tuple[bytes, str]], *options: str
            ) -> str:
    layout = RawLayout(tmp_path / "layout")
    config, descs = layout.image_parts([blob for blob, _ in layers], [d for _, d in layers])
    layout.tag_desc(layout.manifest(config, descs))
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out), *options)
    assert result.code == 1, result.err
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert not list(out.glob(".flat/*/*")), "the partial flat is removed"
    assert not list(out.glob("localhost/*"))
    return lines[0].removeprefix("lamina: error: ")


def test_a_gzip_bomb_stops_before_it_is_inflated(lamina: Lamina, tmp_path: Path) -> None:
    blob, plain = bomb(1024 * MiB)  # 1 GiB of zeros in about 1 MB
    assert len(blob) < 2 * MiB
    message = refused(lamina, tmp_path, [layer([f("ok", "fine")]), (blob, plain)],
                      "--max-bytes", "100M")
    assert message == (f"layer {sha256(blob)}: its files would bring the bytes written past "
                       "the unpack limit of 100 MiB (--max-bytes 100M); the partial flat was "
                       "removed")


def test_many_files_adding_up_past_the_cap(lamina: Lamina, tmp_path: Path) -> None:
    parts = layer([f(f"part{n}", b"x" * MiB) for n in range(12)])
    message = refused(lamina, tmp_path, [parts], "--max-bytes", "10M")
    assert message.startswith(f"layer {sha256(parts[0])}: its files would bring the bytes "
                              "written past the unpack limit of 10 MiB")


def test_the_cap_counts_all_layers(lamina: Lamina, tmp_path: Path) -> None:
    lower = layer([f("lower", b"l" * (6 * MiB))])
    upper = layer([f("upper", b"u" * (6 * MiB))])
    message = refused(lamina, tmp_path, [lower, upper], "--max-bytes", "10M")
    assert message.startswith(f"layer {sha256(upper[0])}: its files would bring")


def test_a_bomb_in_the_padding_after_the_archive(lamina: Lamina, tmp_path: Path) -> None:
    padded = bomb(1, trailing_zeros=64 * MiB)
    message = refused(lamina, tmp_path, [padded], "--max-bytes", "16M")
    assert message == (f"layer {sha256(padded[0])}: its uncompressed tar stream is more than twice "
                       "the unpack limit of 16 MiB (--max-bytes 16M); the partial flat was "
                       "removed")


def test_under_the_cap_the_bytes_written_are_reported(lamina: Lamina, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single(layout, [gz(tar_bytes([f("a", b"x" * 1000), f("b", b"y" * 24)]))])
    result = lamina("unpack", f"oci:{layout}:test", str(tmp_path / "out"), "--max-bytes",
                    "1024", "--json")
    assert result.code == 0, result.err
    summary = result.json()["flats"][0]["summary"]
    assert summary["bytes_written"] == 1024  # /.singularity.d is lamina's, not the image's


def test_a_bad_size_is_a_usage_error(lamina: Lamina, tmp_path: Path) -> None:
    result = lamina("unpack", "oci:/nonexistent", str(tmp_path / "out"), "--max-bytes", "lots")
    assert result.code == 2
    assert result.err.strip() == ("lamina: error: --max-bytes 'lots': expected a size in bytes, "
                                  "optionally with a suffix K, M, G or T (powers of 1024), e.g. "
                                  "20G")


@pytest.mark.parametrize(("text", "size"), [
    ("20G", 20 << 30), ("20g", 20 << 30), ("512M", 512 << 20), ("1.5K", 1536), ("100", 100),
    ("10MiB", 10 << 20), ("2TB", 2 << 40), (" 7 G ", 7 << 30)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "-5G", "G", "1e9", "12X", "5 GB GB"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_the_default_is_the_smaller_of_64_gib_and_the_free_space(tmp_path: Path) -> None:
    budget = budget_for(None, tmp_path / "not" / "yet")
    stat = os.statvfs(tmp_path)
    free = stat.f_bavail * stat.f_frsize
    if free < 64 << 30:
        assert abs(budget.limit - free) < 256 * MiB  # other jobs write meanwhile
        assert budget.source.startswith("the free space on the filesystem of ")
    else:
        assert budget.limit == 64 << 30
        assert budget.source == "the default; --max-bytes sets another limit"
    assert human(64 << 30) == "64 GiB" and human(1536) == "1.5 KiB"


def test_help_says_the_default(lamina: Lamina, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        lamina("unpack", "--help")
    text = " ".join(capfd.readouterr().out.split())
    assert "(default: the smaller of 64G and the free space on DIR's filesystem)" in text
