"""YAML that lamina reads is bounded: alias bombs, deep nesting, huge files, bad text."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lamina.cvmfs import WishlistError
from lamina.cvmfs.wishlist import existing_entries
from lamina.errors import RecipeError
from lamina.yamlio import MAX_FILE_BYTES, load_yaml
from tests.peak_memory import run_measured

LAMINA = str(Path(sys.executable).with_name("lamina"))
# 342 bytes; expanded as plain data, 9**9 ≈ 387 million strings
BOMB = "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9) if prev else ','.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True))


def test_an_alias_bomb_is_refused_in_one_line_with_little_memory(
        tree: Callable[[str], Path]) -> None:
    root = tree("tiny")
    image = root / "images/app/image.yaml"
    image.write_text(BOMB)
    assert len(BOMB) < 350
    measured = run_measured([LAMINA, "-C", str(root), "plan"])
    assert measured.code == 2
    assert measured.err == (f"lamina: error: {image.resolve()}:6: invalid YAML: aliases "
                            "expand to more than 100000 nodes\n")
    assert measured.peak_kib < 150 * 1024, f"peak memory {measured.peak_kib} KiB"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "layer.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "message"), [
    ("a: &x [1, 2]\nb: [" + ", ".join(["*x"] * 1001) + "]\n",
     ":2: invalid YAML: more than 1000 aliases"),
    ("a: " + "[" * 70 + "]" * 70 + "\n", ":1: invalid YAML: nested more than 64 levels deep"),
    ("a: " + "[" * 50_000 + "]" * 50_000 + "\n",  # refused before ruamel's slow scanner
     ":1: invalid YAML: nested more than 64 levels deep"),
    ('kind: "\\ud800"\n', ":1: kind: invalid YAML: a string holds a lone surrogate escape; "
                          "expected UTF-8 text"),
    ('"\\udc00": x\n', ":1: \\udc00: invalid YAML: a string holds a lone surrogate escape; "
                       "expected UTF-8 text"),
    ("s: &s " + "x" * 100_000 + "\nt: [" + ", ".join(["*s"] * 200) + "]\n",
     ":2: invalid YAML: aliases expand to more than 16777216 characters"),
])
def test_unbounded_yaml_is_refused_located(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RecipeError) as caught:
        load_yaml(path)
    assert str(caught.value) == f"{path}{message}"


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "layer.yaml"
    with path.open("wb") as handle:
        handle.write(b"a: " + b"x" * (MAX_FILE_BYTES + 10) + b"\n")
    with pytest.raises(RecipeError, match=f"larger than {MAX_FILE_BYTES} bytes"):
        load_yaml(path)


def test_a_directory_in_place_of_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "layer.yaml").mkdir()
    with pytest.raises(RecipeError) as caught:
        load_yaml(tmp_path / "layer.yaml")
    assert str(caught.value) == f"{tmp_path / 'layer.yaml'}: cannot read: Is a directory"


def test_shared_anchors_within_bounds_still_load(tmp_path: Path) -> None:
    path = write(tmp_path, "base: &b {x: 1}\nenv: &e [a, b]\nc: [*e, *e]\nd: *b\n")
    assert load_yaml(path).data == {"base": {"x": 1}, "env": ["a", "b"],
                                    "c": [["a", "b"], ["a", "b"]], "d": {"x": 1}}


def test_the_cvmfs_wishlist_uses_the_same_bound() -> None:
    """The sync repository's wishlist is remote text: the bomb is refused there too."""
    text = "input:\n  - 'https://registry.example/a:1'\n" + BOMB
    with pytest.raises(WishlistError) as caught:
        existing_entries(text)
    assert str(caught.value) == ("wishlist is refused: aliases expand to more than 100000 "
                                 "nodes (line 8)")
