"""The compiled schema check (:mod:`lamina.schemacheck`) agrees with jsonschema.

:mod:`lamina.schemas` trusts a "valid" from the compiled check and skips jsonschema, so the
check must never accept what jsonschema rejects. Compared here on every recipe file in the
repository (the shipped tree, the test trees, the recipe-error cases) as lamina reads them
(ruamel round-trip types), and on mutations of each: every value replaced by values of other
types and edge cases (empty, trailing newline, bool for number, float for integer,
duplicates), every key deleted, an unknown key added at every mapping.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from lamina.errors import RecipeError
from lamina.schemacheck import Unsupported, compile_schema, json_equal
from lamina.schemas import ecma_regex, fast_check, load_schema
from lamina.yamlio import load_yaml

ROOT = Path(__file__).resolve().parents[2]
KIND = {"recipe.yaml": "recipe", "image.yaml": "image", "layer.yaml": "layer"}
ODD_VALUES: list[Any] = [None, True, False, 0, 1, -1, 1.0, 1.5, 65, "", "x", "x\n", "/x",
                         "linux/amd64", "linux/amd64\n", "rootfs", "apt", [], [""], ["x"],
                         ["linux/amd64", "linux/amd64"], [1, True], {}, {"A": 1},
                         {"1A": "x"}, {"A": [1]}, {1: "x"}, dt.date(2024, 1, 1)]


def reference(schema: dict[str, Any]) -> Any:
    """jsonschema with lamina's ECMA-262 patterns: exactly what lamina.schemas words."""
    def pattern(validator: Any, pattern: str, instance: Any,
                schema: dict[str, Any]) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
            yield ValidationError("no match")

    return validators.extend(Draft202012Validator, {"pattern": pattern})(schema)


def recipe_files() -> list[Path]:
    out = []
    for name in KIND:
        for path in sorted(ROOT.glob(f"**/{name}")):
            if ".venv" not in path.parts and ".lamina" not in path.parts:
                out.append(path)
    return out


def documents() -> list[tuple[str, Any]]:
    """Each distinct file once (many test trees share their layer files)."""
    docs, seen = [], set()
    for path in recipe_files():
        text = path.read_bytes()
        if (path.name, text) in seen:
            continue
        seen.add((path.name, text))
        try:
            docs.append((KIND[path.name], load_yaml(path).data))
        except RecipeError:  # not YAML at all (a bad-yaml case): nothing to validate
            continue
    return docs


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


def at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def mutations(doc: Any) -> Iterator[Any]:
    yield doc
    for path in list(paths(doc)):
        if path:
            for value in ODD_VALUES:
                changed = copy.deepcopy(doc)
                at(changed, path[:-1])[path[-1]] = value
                yield changed
            changed = copy.deepcopy(doc)
            del at(changed, path[:-1])[path[-1]]
            yield changed
        if isinstance(at(doc, path), dict):
            changed = copy.deepcopy(doc)
            at(changed, path)["colour"] = "blue"
            yield changed


DOCS = documents()


def test_the_corpus_covers_all_three_schemas_and_invalid_files() -> None:
    assert {kind for kind, _ in DOCS} == set(KIND.values())
    rejected = [data for kind, data in DOCS if not reference(load_schema(kind)).is_valid(data)]
    assert len(rejected) >= 5  # the recipe-error cases


@pytest.mark.parametrize("kind", sorted(KIND.values()))
def test_every_shipped_schema_compiles(kind: str) -> None:
    assert fast_check(load_schema(kind)) is not None


@pytest.mark.parametrize("kind", sorted(KIND.values()))
def test_verdicts_equal_jsonschema_on_mutated_files(kind: str) -> None:
    schema = load_schema(kind)
    check = fast_check(schema)
    assert check is not None
    validator = reference(schema)
    compared = 0
    for doc_kind, data in DOCS:
        if doc_kind != kind:
            continue
        for variant in mutations(data):
            expected = validator.is_valid(variant)
            assert check(variant) == expected, (expected, variant)
            compared += 1
    assert compared > 200


def test_json_equality_keeps_bools_apart_from_numbers() -> None:
    assert json_equal(1, 1.0) and json_equal([1, {"a": 1}], [1.0, {"a": 1.0}])
    assert not json_equal(1, True) and not json_equal([0], [False])
    assert not json_equal({"a": True}, {"a": 1}) and not json_equal("1", 1)


@pytest.mark.parametrize("schema", [
    {"patternProperties": {"^x": {}}},
    {"items": [{"type": "string"}]},
    {"$ref": "https://example.org/other.json"},
    {"properties": {"a": {"$id": "nested"}}},
    {"anyOf": [{"type": "string"}]},
    {"type": "decimal"},
])
def test_what_it_does_not_implement_is_refused_at_compile_time(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        compile_schema(schema, ecma_regex)
