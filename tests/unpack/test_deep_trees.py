"""Deep trees unpack in time linear in their depth, and deep removals never recurse.

Linearity is asserted structurally: the summary's ``dir_opens`` counts every directory
``openat`` of the unpack. Walking from the root for every entry (what lamina did) costs
``depth²/2`` opens, two million for 2000 levels; a descriptor cache costs about one per level.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lamina.unpack.removal import remove_path
from tests.core.conftest import CliResult
from tests.unpack.oci import Entry, d, f, gz, single, tar_bytes

Lamina = Callable[..., CliResult]


@pytest.fixture(autouse=True)
def remove_deep_trees(tmp_path: Path) -> Iterator[None]:
    """pytest removes old temporary directories with shutil.rmtree, which recurses per level
    and fails on these trees (in whichever later session cleans up): remove them here."""
    yield
    for child in tmp_path.iterdir():
        remove_path(child)


def chain(depth: int, leaf: str = "bottom") -> list[Entry]:
    """Directories ``t/n/n/…`` ``depth`` levels deep, a file in each, a leaf file at the end."""
    entries, path = [], "t"
    entries.append(d(path))
    for level in range(1, depth):
        path += "/n"
        entries += [d(path), f(f"{path}/f{level}", str(level))]
    entries.append(f(f"{path}/{leaf}", "deep"))
    return entries


def unpack(lamina: Lamina, tmp_path: Path, layers: list[bytes], name: str = "out"
           ) -> tuple[CliResult, Path]:
    layout = tmp_path / f"{name}-layout"
    config = single(layout, layers)
    result = lamina("unpack", f"oci:{layout}:test", str(tmp_path / name), "--json")
    hexpart = config.split(":")[1]
    return result, tmp_path / name / ".flat" / hexpart[:2] / hexpart


def walk_down(root: Path, parts: list[str]) -> int:
    """A descriptor of ``root/parts`` opened one level at a time (the path is longer than
    PATH_MAX, so it cannot be opened by name)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for comp in parts:
        child = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd


def test_a_2000_deep_tree_unpacks_with_one_open_per_directory(
        lamina: Lamina, tmp_path: Path) -> None:
    depth = 2000
    result, flat = unpack(lamina, tmp_path, [gz(tar_bytes(chain(depth)))])
    assert result.code == 0, result.err
    summary = result.json()["flats"][0]["summary"]
    assert summary["dirs"] == depth
    # one open per directory while extracting; applying the final modes walks down once and
    # back up once; a few for /.singularity.d. Walking from the root per entry: ~2,000,000
    assert summary["dir_opens"] <= 3 * depth + 100, summary["dir_opens"]
    fd = walk_down(flat, ["t"] + ["n"] * (depth - 1))
    try:
        with os.fdopen(os.open("bottom", os.O_RDONLY, dir_fd=fd)) as handle:
            assert handle.read() == "deep"
        assert os.stat("f1999", dir_fd=fd).st_size == 4
    finally:
        os.close(fd)


def test_opens_grow_linearly_with_depth(lamina: Lamina, tmp_path: Path) -> None:
    opens = {}
    for depth in (250, 1000):
        result, _ = unpack(lamina, tmp_path, [gz(tar_bytes(chain(depth)))], f"out{depth}")
        assert result.code == 0, result.err
        opens[depth] = result.json()["flats"][0]["summary"]["dir_opens"]
    # four times as deep: about four times the opens (quadratic would be sixteen)
    assert opens[1000] <= 4.5 * opens[250], opens


def test_a_1200_deep_whiteout_removes_the_tree_without_recursion(
        lamina: Lamina, tmp_path: Path) -> None:
    depth = 1200
    lower = gz(tar_bytes([*chain(depth), f("keep", "k")]))
    upper = gz(tar_bytes([f(".wh.t")]))
    result, flat = unpack(lamina, tmp_path, [lower, upper])
    assert result.code == 0, result.err
    assert "RecursionError" not in result.err
    assert not os.path.lexists(flat / "t")
    assert (flat / "keep").read_text() == "k"
    summary = result.json()["flats"][0]["summary"]
    assert summary["whiteouts"] == 1
    assert summary["dir_opens"] <= 4 * depth + 100, summary["dir_opens"]


def test_a_1200_deep_opaque_directory_is_emptied_and_refilled(
        lamina: Lamina, tmp_path: Path) -> None:
    depth = 1200
    lower = gz(tar_bytes(chain(depth)))
    upper = gz(tar_bytes([d("t"), f("t/.wh..wh..opq"), f("t/new", "n")]))
    result, flat = unpack(lamina, tmp_path, [lower, upper])
    assert result.code == 0, result.err
    assert sorted(os.listdir(flat / "t")) == ["new"]
    assert result.json()["flats"][0]["summary"]["opaque_dirs"] == 1


def test_a_deep_file_replacing_a_deep_directory(lamina: Lamina, tmp_path: Path) -> None:
    depth = 1200
    lower = gz(tar_bytes(chain(depth)))
    upper = gz(tar_bytes([f("t", "now a file")]))
    result, flat = unpack(lamina, tmp_path, [lower, upper])
    assert result.code == 0, result.err
    assert (flat / "t").read_text() == "now a file"


def test_a_failed_unpack_of_a_deep_tree_leaves_nothing(lamina: Lamina, tmp_path: Path) -> None:
    """The half-built flat is removed iteratively too (shutil.rmtree would recurse)."""
    depth = 1200
    lower = gz(tar_bytes(chain(depth)))
    upper = gz(tar_bytes([f("../escape", "x")]))
    result, _ = unpack(lamina, tmp_path, [lower, upper])
    assert result.code == 1
    assert "'..' component" in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not list((tmp_path / "out").glob(".flat/*/*")), "a failed flat leaves nothing"


def test_read_only_deep_directories_are_applied_after_their_children(
        lamina: Lamina, tmp_path: Path) -> None:
    entries = [d("r", 0o555), d("r/s", 0o555), d("r/s/t", 0o500), f("r/s/t/file", "x", 0o444)]
    result, flat = unpack(lamina, tmp_path, [gz(tar_bytes(entries))])
    assert result.code == 0, result.err
    assert oct(os.stat(flat / "r").st_mode & 0o7777) == oct(0o555)
    assert oct(os.stat(flat / "r/s/t").st_mode & 0o7777) == oct(0o500)
    assert (flat / "r/s/t/file").read_text() == "x"
