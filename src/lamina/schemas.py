"""The JSON Schemas shipped with lamina, and validation that reports file, line and key.

jsonschema's own messages quote whole instances; users need "line 7: layers[2]: expected a
string", so errors are re-worded here from the validator keyword and located through
:class:`~lamina.yamlio.YamlDoc` positions.

A valid file (nearly every file) is recognised by :mod:`lamina.schemacheck`, a compiled check
of the same schemas, and jsonschema is imported only to find and word the error of a file that
check rejects: ``import jsonschema`` alone costs more than planning a small tree does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from lamina.schemacheck import Check, Unsupported, compile_schema
from lamina.yamlio import YamlDoc

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema document ``<name>.schema.json`` from the package."""
    text = resources.files("lamina").joinpath(f"schema/{name}.schema.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A JSON Schema ``pattern`` with its ECMA-262 meaning in Python's ``re``.

    Schema patterns are ECMA-262 regular expressions, where ``$`` (without the multiline
    flag) matches only at the very end of the input; Python's ``$`` also matches before a
    final newline, so ``^[a-z]+$`` would accept ``"name\\n"``. Every ``$`` outside a
    character class and not escaped becomes ``\\Z``.
    """
    out: list[str] = []
    in_class = escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        elif char == "$":
            out.append(r"\Z")
        else:
            out.append(char)
    return re.compile("".join(out))


@cache
def _validator_class() -> Any:
    """Draft 2020-12 with ECMA-262 patterns; jsonschema is imported here, on the error path."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, pattern: str, instance: Any,
                schema: dict[str, Any]) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not ecma_regex(pattern).search(instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})


_fast_checks: dict[int, tuple[dict[str, Any], Check | None]] = {}


def fast_check(schema: dict[str, Any]) -> Check | None:
    """The compiled check of ``schema`` (None when it uses what the check does not know),
    compiled once per schema object (:func:`load_schema` returns the same one each time)."""
    known = _fast_checks.get(id(schema))
    if known is None or known[0] is not schema:
        try:
            check: Check | None = compile_schema(schema, ecma_regex)
        except Unsupported:
            check = None
        known = _fast_checks[id(schema)] = (schema, check)
    return known[1]


def _describe_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "nothing (null)"
    return type(value).__name__


def _wording(error: ValidationError) -> tuple[list[str | int], str]:
    path: list[str | int] = list(error.absolute_path)
    keyword = error.validator
    expected = error.validator_value
    if keyword == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        instance = error.instance if isinstance(error.instance, dict) else {}
        extra = sorted(set(instance) - set(allowed))
        key = extra[0] if extra else "?"
        path.append(key)
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return path, f"unknown key '{key}'{hint}"
    if keyword == "required":
        missing = [k for k in expected if k not in error.instance]
        return path, f"missing required key '{missing[0] if missing else '?'}'"
    if keyword == "type":
        types = expected if isinstance(expected, list) else [expected]
        want = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in types)
        return path, f"expected {want}, got {_describe_type(error.instance)}"
    if keyword in ("enum", "const"):
        options = expected if keyword == "enum" else [expected]
        return path, f"expected one of: {', '.join(map(str, options))}; got {error.instance!r}"
    if keyword == "pattern":
        if "linux/" in str(expected):
            return path, (
                f"unknown platform {error.instance!r} "
                "(expected linux/amd64, linux/arm64 or linux/ppc64le)"
            )
        return path, f"{error.instance!r} does not match the expected form {expected}"
    if keyword == "propertyNames":
        return path, (
            f"unknown platform {error.instance!r} "
            "(expected linux/amd64, linux/arm64 or linux/ppc64le)"
        )
    if keyword == "oneOf":
        return path, "expected exactly one of the alternative keys (see the schema)"
    if keyword in ("minItems", "minLength"):
        return path, "must not be empty"
    if keyword == "uniqueItems":
        return path, "contains duplicates"
    if keyword in ("minimum", "maximum"):
        return path, f"{error.instance!r} is out of range ({keyword} {expected})"
    return path, error.message.splitlines()[0][:200]


def validate(doc: YamlDoc, schema: dict[str, Any], what: str) -> None:
    """Raise a located :class:`RecipeError` for the first (topmost) schema violation."""
    if not isinstance(doc.data, dict):
        raise doc.error((), f"expected a mapping at the top of the {what}, got "
                            f"{_describe_type(doc.data)}")
    check = fast_check(schema)
    if check is not None and check(doc.data):
        return
    validator = _validator_class()(schema)
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return
    located = []
    for err in errors:
        path, message = _wording(err)
        node: Any = doc.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                node = None
        if isinstance(node, dict) and isinstance(err.instance, str) and err.instance in node:
            path = [*path, err.instance]  # a bad key name (propertyNames): point at the key
        located.append((doc.line_of(path), len(path), path, message))
    located.sort(key=lambda item: (item[0], -item[1]))
    _, _, path, message = located[0]
    raise doc.error(path, message)
