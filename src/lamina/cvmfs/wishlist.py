"""Add lines to the unpacker's ``recipe.yaml`` as a pure text insertion.

The sync repository's wishlist is one shared file edited by hand by many groups; a merge
request that re-serialises it (re-quoting, re-indenting, dropping comments) would not be
merged. So the edit inserts whole new lines after the last existing entry of the ``input:``
list and touches no other byte. New lines copy the style most existing entries use (indent,
space after the dash, single/double/no quotes, line ending). The result is then parsed with
ruamel.yaml and must have the same top-level keys and the old entries followed by the new
ones; anything else is refused rather than proposed.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lamina.cvmfs import WishlistError
from lamina.cvmfs.entries import WishEntry, covered_by, parse_entry, parse_existing
from lamina.yamlio import YamlBound, check_bounds, check_text

LIST_KEY = "input"
_KEY_LINE = re.compile(rf"^{LIST_KEY}[ \t]*:(?P<rest>.*)$")
_ITEM = re.compile(r"^(?P<indent> *)-(?P<gap> +)(?P<quote>['\"]?)")
_COMMENTED_ITEM = re.compile(r"^(?P<indent> *)#[ \t]*-(?P<gap> +)(?P<quote>['\"]?)[A-Za-z]")
DEFAULT_INDENT = "    "  # the upstream file's style (4 spaces, single quotes)
DEFAULT_QUOTE = "'"


@dataclass(frozen=True)
class ListStyle:
    indent: str
    gap: str
    quote: str
    eol: str

    def render(self, url: str) -> str:
        if self.quote == "'":
            value = "'" + url.replace("'", "''") + "'"
        elif self.quote == '"':
            value = '"' + url.replace("\\", "\\\\").replace('"', '\\"') + '"'
        else:
            value = url
        return f"{self.indent}-{self.gap}{value}"


@dataclass
class WishlistEdit:
    """The edited text and what happened to each requested line."""

    text: str
    added: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, why)

    @property
    def changed(self) -> bool:
        return bool(self.added)


def _load(text: str, what: str) -> Any:
    yaml = YAML(typ="rt")
    try:
        check_text(text)
        data = yaml.load(io.StringIO(text))
        check_bounds(data)  # the same alias and size bounds as recipe files
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WishlistError(f"{what} is not valid YAML: {first}") from None
    except YamlBound as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise WishlistError(f"{what} is refused: {exc}{where}") from None
    except RecursionError:
        raise WishlistError(f"{what} is refused: nested too deeply") from None
    return data


def existing_entries(text: str, what: str = "wishlist") -> list[str]:
    data = _load(text, what)
    if not isinstance(data, dict) or LIST_KEY not in data:
        raise WishlistError(f"{what} has no top-level '{LIST_KEY}:' list")
    items = data[LIST_KEY]
    if items is None:
        return []
    if not isinstance(items, list):
        raise WishlistError(f"{what}: '{LIST_KEY}:' is not a list")
    return [str(item) for item in items]


def _majority(values: list[str], preference: Sequence[str]) -> str:
    counts = Counter(values)
    return max(counts, key=lambda v: (counts[v], -list(preference).index(v)
                                      if v in preference else -len(preference)))


def _block(lines: list[str], what: str) -> tuple[int, int]:
    """(index of the ``input:`` line, index one past the last line of its block)."""
    keys = [i for i, line in enumerate(lines) if _KEY_LINE.match(line.rstrip("\r\n"))]
    if len(keys) != 1:
        raise WishlistError(f"{what}: expected one top-level '{LIST_KEY}:' line, found "
                            f"{len(keys)}")
    start = keys[0]
    rest = _KEY_LINE.match(lines[start].rstrip("\r\n"))
    assert rest is not None
    tail = rest.group("rest").strip()
    if tail and not tail.startswith("#"):
        raise WishlistError(f"{what}:{start + 1}: '{LIST_KEY}:' is not a block list (found "
                            f"'{tail[:40]}'); lamina only appends lines to a block list")
    end = start + 1
    while end < len(lines):
        body = lines[end].rstrip("\r\n")
        stripped = body.strip()
        at_column_zero = bool(body) and not body[0].isspace()
        if at_column_zero and not stripped.startswith("#") and not (
                body == "-" or body.startswith("- ")):
            break  # the next top-level key, or a document marker
        end += 1
    return start, end


def _style(lines: list[str], start: int, end: int) -> tuple[ListStyle, int]:
    """The majority style of the block's items, and the line to insert after."""
    items = [m for line in lines[start + 1:end] if (m := _ITEM.match(line))]
    last = start
    for i in range(start + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            last = i
    anchor_line = lines[last]
    eol = "\r\n" if anchor_line.endswith("\r\n") else "\n"
    if not anchor_line.endswith("\n"):
        eol = "\r\n" if any(line.endswith("\r\n") for line in lines) else "\n"
    if not items:  # an empty list: follow commented-out entries, else the upstream style
        items = [m for line in lines[start + 1:end] if (m := _COMMENTED_ITEM.match(line))]
    if not items:
        return ListStyle(DEFAULT_INDENT, " ", DEFAULT_QUOTE, eol), last
    indent = _majority([m.group("indent") for m in items], [])
    gap = _majority([m.group("gap") for m in items], [" "])
    quote = _majority([m.group("quote") for m in items], ["'", '"', ""])
    return ListStyle(indent, gap, quote, eol), last


def _top_keys(data: Any) -> list[str]:
    return [str(k) for k in data] if isinstance(data, dict) else []


def add_entries(text: str, urls: Sequence[str], what: str = "wishlist") -> WishlistEdit:
    """Add each of ``urls`` not already listed nor covered by a wildcard; return the new text.

    Raises :class:`EntryError` for a URL the unpacker would reject and
    :class:`WishlistError` when the file cannot be edited by inserting lines.
    """
    old_entries = existing_entries(text, what)
    parsed_old = [e for line in old_entries if (e := parse_existing(line)) is not None]
    edit = WishlistEdit(text=text)
    chosen: list[WishEntry] = []
    for url in urls:
        entry = parse_entry(url)
        if url in old_entries or url in edit.added:
            edit.skipped.append((url, "already listed"))
            continue
        cover = covered_by(entry, parsed_old + chosen)
        if cover is not None:
            why = "already listed" if cover == entry else f"covered by {cover.url}"
            edit.skipped.append((url, why))
            continue
        chosen.append(entry)
        edit.added.append(url)
    if not edit.added:
        return edit

    lines = text.splitlines(keepends=True)
    start, end = _block(lines, what)
    style, last = _style(lines, start, end)
    new_lines = [style.render(url) for url in edit.added]
    head, tail = lines[:last + 1], lines[last + 1:]
    if head[-1].endswith("\n"):
        inserted = "".join(line + style.eol for line in new_lines)
    else:  # the entry was the file's last line, without a newline: keep it that way
        inserted = style.eol + style.eol.join(new_lines)
    edit.text = "".join(head) + inserted + "".join(tail)
    _verify(text, edit, what)
    return edit


def _verify(old_text: str, edit: WishlistEdit, what: str) -> None:
    """Refuse an edit whose meaning is not exactly "the same file plus these entries"."""
    old_data = _load(old_text, what)
    new_data = _load(edit.text, f"{what} (edited)")
    if _top_keys(new_data) != _top_keys(old_data):
        raise WishlistError(f"{what}: the edit would change the top-level keys; refusing it")
    old_items = list(old_data.get(LIST_KEY) or [])
    new_items = list(new_data.get(LIST_KEY) or [])
    if [str(i) for i in new_items] != [str(i) for i in old_items] + edit.added:
        raise WishlistError(f"{what}: the edit would not read back as the old entries plus the "
                            "new ones; refusing it (is the list written in an unusual style?)")
    for key in _top_keys(old_data):
        if key != LIST_KEY and new_data[key] != old_data[key]:
            raise WishlistError(f"{what}: the edit would change '{key}'; refusing it")
