"""The wishlist as DUCC reads it: Go's ``gopkg.in/yaml.v2`` (v2.2.8, ``ducc/go.mod``).

``ParseYamlRecipeV1`` (``ducc/lib/recipe.go``) unmarshals the file into a struct whose
``input`` field is a ``[]string``. Two things follow, and lamina must see both as DUCC does:

* **Syntax.** yaml.v2's scanner and parser (``scannerc.go``, ``parserc.go``) are a line-by-
  line Go port of libyaml (``scanner.c``, ``parser.c``), so the file is read with libyaml
  itself (PyYAML's C loader) rather than with a YAML 1.2 reader. That is where tabs are
  allowed: ``yaml_parser_scan_to_next_token`` eats a tab unless a simple key could start
  there, so a tab after an entry or a key is fine, a tab before a ``-`` or right after it is
  not. libyaml 0.2.5 differs from the Go port in three places that are checked here: it
  refuses the escape ``\\'`` in a double-quoted scalar (yaml.v2 reads it as ``'``), it accepts
  ``\\/`` (yaml.v2 refuses it) and it accepts ``%YAML 1.2`` (yaml.v2: "found incompatible YAML
  document"). Only the first document is read, as ``yaml.Unmarshal`` does.
* **Decoding an item into a Go string** (``decode.go`` ``scalar``, ``resolve.go``): a plain
  null (empty, ``~``, ``null``, ``Null``, ``NULL``) becomes ``""``; any other scalar becomes
  its text as written (``42``, ``true``, ``2024-01-01`` stay strings); ``!!binary`` is
  base64-decoded; a mapping or a sequence is a type error, and a type error anywhere makes
  ``Unmarshal`` fail, upon which DUCC exits ("Impossible to parse the recipe file").
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from lamina import yamlio
from lamina.cvmfs import WishlistError

STR, NULL = "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
BINARY, BOOL = "tag:yaml.org,2002:binary", "tag:yaml.org,2002:bool"
_NULLS = ("", "~", "null", "Null", "NULL")
_BOOLS = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
          "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
_RESOLVABLE = {STR, NULL, BOOL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
               "tag:yaml.org,2002:timestamp"}
_RESOLVER = yaml.resolver.Resolver()
UNMARSHAL_FAILS = "yaml.v2 cannot unmarshal it, so DUCC converts nothing this pass " \
                  "('Impossible to parse the recipe file')"


@dataclass(frozen=True)
class Item:
    """One element of the ``input:`` list: the string DUCC gets, or why there is none."""

    line: int  # 1-based line of the element in the file
    value: str | None
    problem: str | None = None  # set when value is None


@dataclass(frozen=True)
class Document:
    root: Any  # a yaml MappingNode (or None for an empty document)

    def top_keys(self) -> list[str]:
        if not isinstance(self.root, yaml.MappingNode):
            return []
        return [str(k.value) for k, _ in self.root.value]

    def node(self, key: str) -> Any:
        for k, v in self.root.value if isinstance(self.root, yaml.MappingNode) else []:
            if k.value == key:
                return v
        return None

    def shape(self, key: str) -> Any:
        """A comparable form of a key's value (tags, styles-independent values)."""
        return _shape(self.node(key))


def _shape(node: Any, depth: int = 0) -> Any:
    if node is None or depth > 200:
        return None
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value)
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, tuple(_shape(n, depth + 1) for n in node.value))
    return (node.tag, tuple((_shape(k, depth + 1), _shape(v, depth + 1))
                            for k, v in node.value))


def _libyaml() -> Any:
    """PyYAML's libyaml loader; the pure-Python one reads tabs differently from yaml.v2."""
    loader = getattr(yaml, "CSafeLoader", None)
    if loader is None:
        raise WishlistError("PyYAML is installed without libyaml, which lamina needs to read "
                            "the wishlist as DUCC's yaml.v2 (a port of libyaml) does; "
                            "reinstall PyYAML from a wheel or with libyaml-dev present")
    return loader


def _compose(text: str) -> tuple[Any, Any]:
    loader = _libyaml()(text)
    try:
        return (loader.get_node() if loader.check_node() else None), loader
    except BaseException:
        loader.dispose()
        raise


def _yaml_error(exc: yaml.YAMLError, what: str) -> WishlistError:
    mark = getattr(exc, "problem_mark", None)
    where = f"{what}:{mark.line + 1}" if mark is not None else what
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    said = f"{context}: {problem}" if context else str(problem)
    return WishlistError(f"{where}: not valid YAML for DUCC's reader (yaml.v2): {said}")


def _patch_single_quote_escapes(text: str, what: str) -> tuple[str, Any]:
    """Compose ``text``; a ``\\'`` escape that only libyaml refuses is read as ``\\x27``
    (the same character for yaml.v2). Returns the text that was composed and its root."""
    lines = text.splitlines(keepends=True)
    for _ in range(text.count("\\'") + 1):
        current = "".join(lines)
        try:
            root, loader = _compose(current)
            loader.dispose()
            return current, root
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            if (mark is None or getattr(exc, "problem", "") != "found unknown escape character"
                    or lines[mark.line][mark.column:mark.column + 2] != "\\'"):
                raise _yaml_error(exc, what) from None
            row = lines[mark.line]
            lines[mark.line] = row[:mark.column] + "\\x27" + row[mark.column + 2:]
    raise WishlistError(f"{what}: not valid YAML for DUCC's reader (yaml.v2)")


def _double_quoted_spans(text: str, last_line: int) -> Iterator[tuple[int, str]]:
    lines = text.splitlines()
    try:
        for token in yaml.scan(text, Loader=_libyaml()):
            start, end = token.start_mark, token.end_mark
            if start.line > last_line:
                return
            if isinstance(token, yaml.ScalarToken) and token.style == '"':
                if start.line == end.line:
                    raw = lines[start.line][start.column:end.column]
                else:
                    raw = "\n".join([lines[start.line][start.column:],
                                     *lines[start.line + 1:end.line],
                                     lines[end.line][:end.column]])
                yield start.line + 1, raw
    except yaml.YAMLError:
        return  # past the first document, which is all yaml.v2 reads


def _check_go_port(text: str, root: Any, what: str) -> None:
    for event in yaml.parse(text, Loader=_libyaml()):
        if isinstance(event, yaml.DocumentStartEvent):
            version = getattr(event, "version", None)
            if version is not None and tuple(version) != (1, 1):
                raise WishlistError(f"{what}:{event.start_mark.line + 1}: yaml.v2 refuses "
                                    f"%YAML {version[0]}.{version[1]} ('found incompatible "
                                    "YAML document'), so DUCC cannot read this file")
            break
    last = root.end_mark.line if root is not None else 0
    for line, raw in _double_quoted_spans(text, last):
        i = 0
        while i < len(raw) - 1:
            if raw[i] == "\\":
                if raw[i + 1] == "/":
                    raise WishlistError(f"{what}:{line}: yaml.v2 does not know the escape "
                                        "'\\/' ('found unknown escape character'), so DUCC "
                                        "cannot read this file")
                i += 2
            else:
                i += 1


def _check_expansion(root: Any, what: str) -> None:
    """The same bounds as recipe files (:mod:`lamina.yamlio`) on the composed node graph:
    aliases share nodes, and comparing or walking the document would expand every use, so a
    few hundred bytes of nested aliases must be refused before anything walks it. Each shared
    node is measured once (linear in the file), iteratively (no recursion limit)."""
    sizes: dict[int, int] = {}
    aliases = 0
    stack: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        if node is None or isinstance(node, yaml.ScalarNode):
            continue
        ident = id(node)
        children = ([c for pair in node.value for c in pair]
                    if isinstance(node, yaml.MappingNode) else list(node.value))
        if done:
            sizes[ident] = 1 + sum(sizes.get(id(c), 1) for c in children)
            if sizes[ident] > yamlio.MAX_NODES:
                raise WishlistError(f"{what} is refused: aliases expand to more than "
                                    f"{yamlio.MAX_NODES} nodes (line {node.start_mark.line + 1})")
            continue
        if ident in sizes:
            aliases += 1
            if aliases > yamlio.MAX_ALIASES:
                raise WishlistError(f"{what} is refused: more than {yamlio.MAX_ALIASES} aliases "
                                    f"(line {node.start_mark.line + 1})")
            continue
        if depth > yamlio.MAX_DEPTH:
            raise WishlistError(f"{what} is refused: nested more than {yamlio.MAX_DEPTH} levels "
                                f"deep (line {node.start_mark.line + 1})")
        sizes[ident] = 0  # seen; finished below once its children are measured
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children)


def read(text: str, what: str = "wishlist") -> Document:
    """The first document of ``text`` as yaml.v2 accepts it, or :class:`WishlistError`."""
    try:
        yamlio.check_text(text)
    except yamlio.YamlBound as exc:
        raise WishlistError(f"{what} is refused: {exc} (line {exc.line})") from None
    composed, root = _patch_single_quote_escapes(text, what)
    _check_expansion(root, what)
    _check_go_port(composed, root, what)
    return Document(root)


def _plain(node: yaml.ScalarNode) -> bool:
    return node.style in (None, "")  # libyaml's loader says "" for a plain scalar


def _explicit_tag(node: yaml.ScalarNode) -> str | None:
    """The tag written in the file, if any (PyYAML stores the resolved one otherwise)."""
    implicit = STR if not _plain(node) else _RESOLVER.resolve(
        yaml.ScalarNode, node.value, (True, False))
    return None if node.tag == implicit else node.tag


def _string(node: yaml.ScalarNode) -> tuple[str | None, str | None]:
    """yaml.v2's decoding of a scalar into a Go string: (value, problem)."""
    tag = _explicit_tag(node)
    value = node.value
    if tag is None:
        return ("" if _plain(node) and value in _NULLS else value), None
    short = tag.replace("tag:yaml.org,2002:", "!!")
    if tag == BINARY:
        try:
            return base64.b64decode(value.replace("\n", ""), validate=True).decode(
                "utf-8", "replace"), None
        except (binascii.Error, ValueError):
            return None, f"'{short}' value is not base64: {UNMARSHAL_FAILS}"
    if tag not in _RESOLVABLE or tag == STR:
        return value, None
    if tag == NULL and value in _NULLS:
        return "", None
    if tag == BOOL and value in _BOOLS:
        return value, None
    return None, f"explicit tag '{short}': lamina does not model how yaml.v2 decodes it"


def input_items(doc: Document) -> list[Item]:
    """The ``input:`` elements (an empty list when the key is absent or null)."""
    node = doc.node("input")
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise WishlistError(f"line {node.start_mark.line + 1}: 'input:' is not a list")
    items = []
    for element in node.value:
        line = element.start_mark.line + 1
        if isinstance(element, yaml.ScalarNode):
            value, problem = _string(element)
            items.append(Item(line, value, problem))
        else:
            kind = "mapping" if isinstance(element, yaml.MappingNode) else "list"
            short = "!!map" if kind == "mapping" else "!!seq"
            items.append(Item(line, None, f"a {kind}, not a string: yaml.v2 fails with "
                                          f"'cannot unmarshal {short} into string' and DUCC "
                                          "converts nothing this pass ('Impossible to parse "
                                          "the recipe file')"))
    return items
