"""A fast reading of the plain YAML most recipe files are, or "not sure" (None).

Why: ruamel's round-trip loader is pure Python; on a tree of 1000 images it is most of the
time ``lamina plan`` takes, and importing it is a good part of the start-up. libyaml (the C
parser PyYAML wraps, already a dependency) gives the same events much faster. But lamina's
YAML is ruamel's (YAML 1.2: ``yes`` is a string, ``0o17`` an integer; ruamel's messages for
bad YAML), so this reader only answers for documents whose meaning cannot differ between the
two, and returns None for anything else, which :func:`lamina.yamlio.load_yaml` then reads
with ruamel exactly as before:

* one document, no directives, no anchors, aliases, explicit tags or merge keys, no
  duplicate keys, keys that are strings, at most :data:`lamina.yamlio.MAX_DEPTH` levels and
  :data:`lamina.yamlio.MAX_NODES` nodes;
* text without control characters (tabs included: ruamel refuses some libyaml takes),
  surrogates or non-characters, so both readers accept the same characters;
* quoted and block scalars are strings; a plain scalar is ``true``/``false`` (in the three
  spellings YAML 1.2's core schema gives), a decimal integer without sign or leading zero,
  or a string when it cannot be read as anything else under YAML 1.1 or 1.2 (it does not
  start with a digit, a sign, ``~``, ``=``, ``<``, or ``.`` then a digit or ``_``, and is
  not ``.inf``, ``.nan`` or a null or boolean word).
  Anything else (floats, nulls, dates, octal, ...) is left to ruamel.

``tests/core/test_yamlfast.py`` compares data and line numbers with ruamel's reading.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

PathKey = tuple[str | int, ...]
MAX_DEPTH = 64
MAX_NODES = 100_000

_UNSAFE_CHARS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_BOOLS = {"true": True, "True": True, "TRUE": True,
          "false": False, "False": False, "FALSE": False}
_WORDS = {"null", "yes", "no", "on", "off", "y", "n", "nan", "inf"}
_NOT_STRING_START = frozenset("0123456789+-.~=<")
_DOT_FLOAT = frozenset("0123456789_")


class _Unsure(Exception):
    pass


def _plain_scalar(text: str) -> Any:
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.match(text):
        return int(text)
    # ".lamina/store" is a string; ".5", "._1", ".inf", ".NaN" are floats to YAML 1.2
    dotted_string = (text[:1] == "." and text[1:2] not in _DOT_FLOAT
                     and text.lower() not in (".inf", ".nan"))
    if not text or (text[0] in _NOT_STRING_START and not dotted_string) \
            or text.lower() in _WORDS:
        raise _Unsure
    return text


def _scalar(event: Any) -> Any:
    if event.anchor is not None or event.tag is not None:
        raise _Unsure
    if not event.style:  # plain (libyaml gives "", the Python parser None)
        return _plain_scalar(event.value)
    if _SURROGATE.search(event.value):
        raise _Unsure  # ruamel's reading refuses it with its line
    return event.value


def fast_load(text: str) -> tuple[Any, dict[PathKey, int]] | None:
    """``(data, lines)`` as :func:`lamina.yamlio.load_yaml` would build them, or None."""
    if _UNSAFE_CHARS.search(text):
        return None
    try:
        events = list(yaml.parse(text, Loader=yaml.CSafeLoader))
    except yaml.YAMLError:
        return None  # ruamel words the error
    if len(events) > 4 * MAX_NODES:
        return None
    lines: dict[PathKey, int] = {(): 1}
    try:
        data = _document(events, lines)
    except (_Unsure, IndexError, RecursionError):
        return None
    return ({} if data is None else data), lines


def _document(events: list[Any], lines: dict[PathKey, int]) -> Any:
    if not isinstance(events[0], yaml.StreamStartEvent) \
            or not isinstance(events[-1], yaml.StreamEndEvent):
        raise _Unsure
    if len(events) == 2:
        return None  # an empty file
    start = events[1]
    if not isinstance(start, yaml.DocumentStartEvent) or start.version or start.tags:
        raise _Unsure
    position = [2]
    value = _node(events, position, (), 0, lines)
    if not isinstance(events[position[0]], yaml.DocumentEndEvent) \
            or position[0] + 2 != len(events):
        raise _Unsure  # a second document
    return value


def _node(events: list[Any], position: list[int], path: PathKey, depth: int,
          lines: dict[PathKey, int]) -> Any:
    event = events[position[0]]
    position[0] += 1
    if isinstance(event, yaml.ScalarEvent):
        return _scalar(event)
    if depth >= MAX_DEPTH or getattr(event, "anchor", None) is not None \
            or getattr(event, "tag", None) is not None:
        raise _Unsure
    if isinstance(event, yaml.MappingStartEvent):
        out: dict[str, Any] = {}
        while not isinstance(events[position[0]], yaml.MappingEndEvent):
            key_event = events[position[0]]
            if not isinstance(key_event, yaml.ScalarEvent):
                raise _Unsure
            position[0] += 1
            key = _scalar(key_event)
            if not isinstance(key, str) or key in out or key == "<<":
                raise _Unsure
            sub = (*path, key)
            lines[sub] = key_event.start_mark.line + 1
            out[key] = _node(events, position, sub, depth + 1, lines)
        position[0] += 1
        return out
    if isinstance(event, yaml.SequenceStartEvent):
        items: list[Any] = []
        while not isinstance(events[position[0]], yaml.SequenceEndEvent):
            sub = (*path, len(items))
            lines[sub] = events[position[0]].start_mark.line + 1
            items.append(_node(events, position, sub, depth + 1, lines))
        position[0] += 1
        return items
    raise _Unsure  # an alias
