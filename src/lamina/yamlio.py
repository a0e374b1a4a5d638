"""YAML loading that remembers where every key came from.

Recipe errors must name the file, line and key, so recipes are parsed with ruamel's
round-trip loader (which records positions) and converted to plain Python data alongside a
position index keyed by the path to each node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from lamina.errors import Location, RecipeError

PathKey = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """Plain data of one YAML file plus the 1-based line of each node, by path."""

    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Iterable[str | int]) -> int:
        """The line of the deepest known node on ``path`` (1 for the document)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def location(self, path: Iterable[str | int]) -> Location:
        parts = tuple(path)
        return Location(self.file, self.line_of(parts), dotted(parts) or None)

    def error(self, path: Iterable[str | int], message: str) -> RecipeError:
        return RecipeError(message, self.location(path))


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text


def _plain(node: Any, path: PathKey, lines: dict[PathKey, int]) -> Any:
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            sub = (*path, str(key))
            try:
                kline = node.lc.key(key)[0] + 1
            except (KeyError, TypeError, AttributeError):
                kline = node.lc.line + 1
            lines[sub] = kline
            out[str(key)] = _plain(value, sub, lines)
        return out
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            sub = (*path, index)
            try:
                lines[sub] = node.lc.item(index)[0] + 1
            except (KeyError, TypeError, AttributeError, IndexError):
                lines[sub] = node.lc.line + 1
            items.append(_plain(value, sub, lines))
        return items
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def load_yaml(file: Path) -> YamlDoc:
    """Parse ``file``; a syntax error becomes a one-line :class:`RecipeError`."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RecipeError("file not found", Location(file)) from exc
    except UnicodeDecodeError as exc:
        raise RecipeError("not UTF-8 text", Location(file)) from exc
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        raise RecipeError(f"invalid YAML: {problem}", Location(file, line)) from exc
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid YAML"
        raise RecipeError(f"invalid YAML: {first}", Location(file)) from exc
    lines: dict[PathKey, int] = {(): 1}
    data = _plain(node, (), lines)
    if data is None:
        data = {}
    return YamlDoc(file=file, data=data, lines=lines)
