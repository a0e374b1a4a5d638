"""The libyaml fast reading (:mod:`lamina.yamlfast`) gives ruamel's data and lines, or none.

Compared on every recipe file of the repository (the shipped tree, the test trees, the
recipe-error cases) and on crafted documents where YAML 1.1 (libyaml's resolver) and YAML 1.2
(ruamel's) differ: for each, the fast reading is either None (ruamel reads it) or exactly
what ruamel's reading gives, data with its types and the line of every node.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.errors import RecipeError
from lamina.yamlfast import fast_load
from lamina.yamlio import _load_with_ruamel

ROOT = Path(__file__).resolve().parents[2]

CRAFTED = [
    "a: yes\nb: no\nc: on\nd: off\ne: y\n",
    "a: 0777\nb: 0o17\nc: 0x1f\nd: 1_000\ne: +1\nf: -1\ng: 01\n",
    "a: 1.5\nb: .inf\nc: .NaN\nd: 1e3\ne: 2024-01-01\nf: 12:30:00\n",
    "a: .5\nb: ._1\nc: .e1\nd: .lamina/store\ne: .\nf: ..\ng: .Inf\n",
    "store: .lamina/store\nx: .hidden\n",
    "a: ~\nb: null\nc:\nd: Null\n",
    "a: true\nb: True\nc: TRUE\nd: tRuE\ne: false\n",
    "a: &x [1]\nb: *x\n",
    "base: &b {x: 1}\nc:\n  <<: *b\n",
    "a: !!str 1\nb: !custom x\n",
    "%YAML 1.1\n---\na: yes\n",
    "a: 1\n---\nb: 2\n",
    "a: 1\na: 2\n",
    "? [x]\n: 1\n",
    "1: x\ntrue: y\n",
    'a: "\\ud800"\n',
    "a: \"tab\\there\"\nb: 'it''s'\nc: |\n  line\n   more\nd: >-\n  folded\n  text\n\n",
    "list:\n- name: x\n  run: y\n- - nested\n  - 2\n-\n  k: v\n",
    "plain: multi\n  line\n  scalar\nurl: http://x.y/z?q=1#f\n",
    "env: {A: 1, B: x, C: '2', D: -x}\n",
    "",
    "# only a comment\n",
    "[1, 2]\n",
    "x\n",
    "a: [1, 2\n",
    "a: \x01\n",
    "a:\n\tb: 1\n",
    "a: b: c\n",
]


def recipe_texts() -> list[tuple[str, str]]:
    out = []
    for name in ("recipe.yaml", "image.yaml", "layer.yaml"):
        for path in sorted(ROOT.glob(f"**/{name}")):
            if ".venv" in path.parts or ".lamina" in path.parts:
                continue
            try:
                out.append((str(path), path.read_text()))
            except UnicodeDecodeError:
                continue
    return out


def ruamel_reading(text: str) -> object:
    try:
        doc = _load_with_ruamel(Path("f.yaml"), text)
    except RecipeError as exc:
        return ("error", str(exc))
    return doc.data, doc.lines


def typed(value: object) -> object:
    """The value with the type of every part, so 1 and True and 1.0 differ."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def test_the_repository_files_take_the_fast_path_and_read_the_same() -> None:
    texts = recipe_texts()
    fast = 0
    for name, text in texts:
        result = fast_load(text)
        if result is None:
            continue
        fast += 1
        expected = ruamel_reading(text)
        assert isinstance(expected, tuple) and expected[0] != "error", name
        assert (typed(result[0]), result[1]) == (typed(expected[0]), expected[1]), name
    assert fast >= 0.9 * len(texts)  # plain files are the rule


@pytest.mark.parametrize("text", CRAFTED)
def test_crafted_documents_read_the_same_or_go_to_ruamel(text: str) -> None:
    result = fast_load(text)
    if result is None:
        return
    expected = ruamel_reading(text)
    assert isinstance(expected, tuple) and expected[0] != "error", expected
    assert (typed(result[0]), result[1]) == (typed(expected[0]), expected[1])


@pytest.mark.parametrize("text", [
    "a: yes\n", "a: 0777\n", "a: 1.5\n", "a: ~\n", "a: &x 1\nb: *x\n", "a: !!str 1\n",
    "%YAML 1.1\n---\na: 1\n", "a: 1\n---\nb: 2\n", "a: 1\na: 2\n", "1: x\n", 'a: "\\ud800"\n',
    "a: [1, 2\n", "a: 2024-01-01\n", "a: -1\n", "a: .5\n", "a: ._1\n", "a: .inf\n",
    "a: .NaN\n",
])
def test_where_the_readings_could_differ_ruamel_reads(text: str) -> None:
    assert fast_load(text) is None
