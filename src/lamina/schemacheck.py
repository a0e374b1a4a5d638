"""A fast yes/no check of a document against one of lamina's JSON Schemas, without jsonschema.

Why: ``import jsonschema`` costs more than everything else ``lamina plan`` does on a small tree
(its format checkers import a grammar compiler at import time), and its validator walks each
schema through a generic, reference-resolving machinery for every file: most of lamina's
start-up and a large share of planning a big tree. Nearly every recipe file is valid, so
:mod:`lamina.schemas` asks this module first and calls jsonschema only when a file is NOT
valid here, to find and word the error exactly as before.

The check must never say "valid" for a document jsonschema rejects (that would let bad input
through); saying "invalid" for a valid one would only cost time (jsonschema then finds no
error). It implements exactly the Draft 2020-12 keywords lamina's schemas use, with
jsonschema's meaning of each (``jsonschema/_keywords.py``, ``_types.py``, ``_utils.py`` of
jsonschema 4.x; the JSON Schema 2020-12 validation vocabulary): ``type`` (an integer may be a
float with no fraction, a bool is never a number), ``enum``/``const`` (``1`` never equals
``true``), ``properties``, ``additionalProperties``, ``required``, ``propertyNames``,
``items``, ``minItems``, ``uniqueItems``, ``minLength``, ``pattern`` (ECMA-262 ``$``, as
:func:`lamina.schemas.ecma_regex`), ``minimum``, ``maximum``, ``allOf``, ``oneOf``,
``if``/``then``/``else``, local ``$ref`` to ``#/$defs/...``, boolean schemas, and the
annotations (``format`` is an annotation in 2020-12 unless a format checker is asked for, and
lamina asks for none). A schema using any other keyword raises :class:`Unsupported` when
compiled; :mod:`lamina.schemas` then uses jsonschema alone for it.
``tests/core/test_schemacheck.py`` compares the verdicts with jsonschema's on mutated
documents.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[Any], bool]

# keywords that never make a document invalid (2020-12 core and meta-data vocabularies)
_ANNOTATIONS = frozenset({"$schema", "$comment", "$defs", "title", "description", "default",
                          "examples", "deprecated", "readOnly", "writeOnly", "format"})


class Unsupported(Exception):
    """The schema uses something this check does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": _is_integer,
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}

_TRUE = object()
_FALSE = object()


def _unbool(value: Any) -> Any:
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return value


def json_equal(one: Any, two: Any) -> bool:
    """Equality as JSON Schema means it: ``true`` is not ``1``, also inside lists and
    mappings; ``1`` and ``1.0`` are equal."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, Sequence) and isinstance(two, Sequence):
        return len(one) == len(two) and all(json_equal(a, b) for a, b in zip(one, two,
                                                                                 strict=True))
    if isinstance(one, Mapping) and isinstance(two, Mapping):
        return len(one) == len(two) and all(k in two and json_equal(v, two[k])
                                            for k, v in one.items())
    return bool(_unbool(one) == _unbool(two))


def _unique(items: list[Any]) -> bool:
    seen: list[Any] = []
    for item in items:
        if any(json_equal(item, other) for other in seen):
            return False
        seen.append(item)
    return True


def _all(checks: list[Check]) -> Check:
    if not checks:
        return lambda _value: True
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


class _Compiler:
    def __init__(self, root: Any, pattern: Callable[[str], re.Pattern[str]]) -> None:
        self.root = root
        self.pattern = pattern
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/$defs/") or "/" in pointer[len("#/$defs/"):] \
                or "~" in pointer or "%" in pointer:
            raise Unsupported(f"$ref {pointer}")
        if pointer not in self.refs:
            name = pointer[len("#/$defs/"):]
            target = (self.root.get("$defs") or {}).get(name) \
                if isinstance(self.root, dict) else None
            if target is None:
                raise Unsupported(f"$ref {pointer} names no definition")
            compiled: list[Check] = []
            self.refs[pointer] = lambda value: compiled[0](value)  # a recursive ref is fine
            compiled.append(self.compile(target))
        return self.refs[pointer]

    def compile(self, schema: Any, top: bool = False) -> Check:
        if schema is True:
            return lambda _value: True
        if schema is False:
            return lambda _value: False
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or (keyword == "$id" and top):
                continue
            if keyword in ("then", "else"):
                continue  # applied by "if"
            make = getattr(self, "k_" + keyword.lstrip("$"), None)
            if make is None:
                raise Unsupported(f"keyword {keyword}")
            checks.append(make(value, schema))
        return _all(checks)

    # -- keywords: each returns the check of one keyword of one schema ------------------

    def k_ref(self, value: Any, _schema: dict[str, Any]) -> Check:
        if not isinstance(value, str):
            raise Unsupported("$ref")
        return self.ref(value)

    def k_type(self, value: Any, _schema: dict[str, Any]) -> Check:
        names = value if isinstance(value, list) else [value]
        try:
            tests = [_TYPES[name] for name in names]
        except (KeyError, TypeError):
            raise Unsupported(f"type {value!r}") from None
        return lambda v: any(test(v) for test in tests)

    def k_enum(self, value: Any, _schema: dict[str, Any]) -> Check:
        options = list(value)
        return lambda v: any(json_equal(option, v) for option in options)

    def k_const(self, value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: json_equal(v, value)

    def k_properties(self, value: Any, _schema: dict[str, Any]) -> Check:
        subs = [(name, self.compile(sub)) for name, sub in value.items()]

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            return all(sub(v[name]) for name, sub in subs if name in v)
        return check

    def k_additionalProperties(self, value: Any, schema: dict[str, Any]) -> Check:
        if "patternProperties" in schema:
            raise Unsupported("patternProperties")
        known = schema.get("properties", {})
        if value is True:
            return lambda _v: True
        if value is False:
            return lambda v: not isinstance(v, dict) or all(key in known for key in v)
        sub = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(sub(item) for key, item in v.items()
                                                        if key not in known)

    def k_required(self, value: Any, _schema: dict[str, Any]) -> Check:
        names = list(value)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def k_propertyNames(self, value: Any, _schema: dict[str, Any]) -> Check:
        sub = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(sub(key) for key in v)

    def k_items(self, value: Any, schema: dict[str, Any]) -> Check:
        if "prefixItems" in schema or isinstance(value, list):
            raise Unsupported("prefixItems")
        sub = self.compile(value)
        return lambda v: not isinstance(v, list) or all(sub(item) for item in v)

    def k_minItems(self, value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= value

    def k_uniqueItems(self, value: Any, _schema: dict[str, Any]) -> Check:
        if not value:
            return lambda _v: True
        return lambda v: not isinstance(v, list) or _unique(v)

    def k_minLength(self, value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= value

    def k_pattern(self, value: Any, _schema: dict[str, Any]) -> Check:
        regex = self.pattern(value)
        return lambda v: not isinstance(v, str) or regex.search(v) is not None

    def k_minimum(self, value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or not v < value

    def k_maximum(self, value: Any, _schema: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or not v > value

    def k_allOf(self, value: Any, _schema: dict[str, Any]) -> Check:
        return _all([self.compile(sub) for sub in value])

    def k_oneOf(self, value: Any, _schema: dict[str, Any]) -> Check:
        subs = [self.compile(sub) for sub in value]
        return lambda v: sum(1 for sub in subs if sub(v)) == 1

    def k_if(self, value: Any, schema: dict[str, Any]) -> Check:
        condition = self.compile(value)
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda v: then(v) if condition(v) else otherwise(v)


def compile_schema(schema: dict[str, Any], pattern: Callable[[str], re.Pattern[str]]) -> Check:
    """A function telling whether a document is valid against ``schema``; ``pattern`` turns a
    schema pattern into the regular expression it means. Raises :class:`Unsupported`."""
    return _Compiler(schema, pattern).compile(schema, top=True)
