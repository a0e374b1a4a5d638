"""YAML loading that remembers where every key came from.

Recipe errors must name the file, line and key, so recipes are parsed with ruamel's
round-trip loader (which records positions) and converted to plain Python data alongside a
position index keyed by the path to each node. Most files are plain enough for
:mod:`lamina.yamlfast` (libyaml) to read them with the same result much faster; ruamel is
imported only for the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.errors import Location, RecipeError
from lamina.yamlfast import MAX_DEPTH as MAX_DEPTH
from lamina.yamlfast import MAX_NODES as MAX_NODES
from lamina.yamlfast import fast_load

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


def printable(text: str, limit: int = 80) -> str:
    """``text`` for a one-line message: control characters (and other unprintable ones)
    escaped as Python does, long text shortened."""
    out = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit - 3] + "..."


def dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + printable(part)
    return text


# Bounds on what one YAML file may expand to. Aliases share nodes in the parsed tree, but
# converting to plain data copies each use: 350 bytes of nested aliases ("billion laughs")
# would become gigabytes. No recipe comes near these.
# MAX_NODES (nodes after expanding aliases) and MAX_DEPTH (nesting of mappings and lists)
# are defined in lamina.yamlfast, which keeps to them too.
MAX_ALIASES = 1_000  # uses of an anchored mapping or list
MAX_CHARS = 16 * 1024 * 1024  # characters of scalars after expanding aliases
MAX_FILE_BYTES = 8 * 1024 * 1024


class YamlBound(Exception):
    """The document exceeds a bound; ``line`` is the 1-based line where it did."""

    def __init__(self, message: str, line: int | None, key: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.key = key


def check_text(text: str) -> None:
    """Refuse text that would cost the parser more than its size: ruamel's scanner slows
    down steeply with nested flow collections (800 levels of ``[`` take seconds) long
    before its recursion gives up. Brackets are counted without parsing (quoted ones too),
    at twice the nesting bound, so a legitimate file is never refused here; the exact
    bound is :func:`check_bounds`'s, on the parsed tree."""
    depth = 0
    line = 1
    for char in text:
        if char in "[{":
            depth += 1
            if depth > 2 * MAX_DEPTH:
                raise YamlBound(f"nested more than {MAX_DEPTH} levels deep", line)
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char == "\n":
            line += 1


def _line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else None


def check_bounds(node: Any) -> None:
    """Refuse a parsed (round-trip) tree whose plain expansion would exceed the bounds, in
    time and memory linear in the *parsed* size: each shared node is measured once."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    sizes: dict[int, tuple[int, int]] = {}  # id → (nodes, chars) of its expansion
    active: set[int] = set()
    aliases = 0

    def measure(item: Any, depth: int) -> tuple[int, int]:
        nonlocal aliases
        if isinstance(item, str):
            return 1, len(item)
        if not isinstance(item, CommentedMap | CommentedSeq):
            return 1, 0
        ident = id(item)
        if ident in active:
            raise YamlBound("an alias refers to a node that contains it (recursive alias)",
                            _line(item))
        if ident in sizes:
            return sizes[ident]
        if depth > MAX_DEPTH:
            raise YamlBound(f"nested more than {MAX_DEPTH} levels deep", _line(item))
        active.add(ident)
        nodes, chars = 1, 0
        children = (list(item.keys()) + list(item.values()) if isinstance(item, CommentedMap)
                    else list(item))
        for child in children:
            if isinstance(child, CommentedMap | CommentedSeq) and id(child) in sizes:
                aliases += 1  # a second use of an anchored node: an alias, here
                if aliases > MAX_ALIASES:
                    raise YamlBound(f"more than {MAX_ALIASES} aliases", _line(item))
            sub_nodes, sub_chars = measure(child, depth + 1)
            nodes, chars = nodes + sub_nodes, chars + sub_chars
            if nodes > MAX_NODES:
                raise YamlBound(f"aliases expand to more than {MAX_NODES} nodes", _line(item))
            if chars > MAX_CHARS:
                raise YamlBound(f"aliases expand to more than {MAX_CHARS} characters",
                                _line(item))
        active.discard(ident)
        sizes[ident] = (nodes, chars)
        return nodes, chars

    measure(node, 0)


def _text(value: str, path: PathKey, lines: dict[PathKey, int]) -> str:
    """A plain ``str``; a lone surrogate (a YAML ``\\uD800`` escape) is no UTF-8 text."""
    text = str(value)
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        line = YamlDoc(Path(), None, lines).line_of(path)
        raise YamlBound("a string holds a lone surrogate escape; expected UTF-8 text", line,
                        dotted(path) or None)
    return text


def _plain(node: Any, path: PathKey, lines: dict[PathKey, int]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            sub = (*path, str(key))
            try:
                kline = node.lc.key(key)[0] + 1
            except (KeyError, TypeError, AttributeError):
                kline = node.lc.line + 1
            lines[sub] = kline
            out[_text(str(key), sub, lines)] = _plain(value, sub, lines)
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
        return _text(node, path, lines)
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
        with file.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError as exc:
        raise RecipeError("file not found", Location(file)) from exc
    except OSError as exc:
        raise RecipeError(f"cannot read: {exc.strerror or type(exc).__name__}",
                          Location(file)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise RecipeError(f"larger than {MAX_FILE_BYTES} bytes; not a recipe file",
                          Location(file))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError("not UTF-8 text", Location(file)) from exc
    try:
        check_text(text)
    except YamlBound as exc:
        raise RecipeError(f"invalid YAML: {exc}", Location(file, exc.line)) from None
    fast = fast_load(text)
    if fast is not None:
        return YamlDoc(file=file, data=fast[0], lines=fast[1])
    return _load_with_ruamel(file, text)


def _load_with_ruamel(file: Path, text: str) -> YamlDoc:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

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
    except RecursionError:
        raise RecipeError(f"invalid YAML: nested more than {MAX_DEPTH} levels deep",
                          Location(file)) from None
    lines: dict[PathKey, int] = {(): 1}
    try:
        check_bounds(node)
        data = _plain(node, (), lines)
    except YamlBound as exc:
        raise RecipeError(f"invalid YAML: {exc}", Location(file, exc.line, exc.key)) from None
    if data is None:
        data = {}
    return YamlDoc(file=file, data=data, lines=lines)
