"""Add lines to the unpacker's ``recipe.yaml`` as a pure text insertion.

The sync repository's wishlist is one shared file edited by hand by many groups; a merge
request that re-serialises it (re-quoting, re-indenting, dropping comments) would not be
merged. So the edit inserts whole new lines after the last existing entry of the ``input:``
list and touches no other byte. New lines copy the style most existing entries use (indent,
space after the dash, single/double/no quotes, line ending). Both the file and the result are
read as DUCC reads them (:mod:`lamina.cvmfs.yaml_v2`); the result must have the same top-level
keys, the same values under them, and the old entries followed by the new ones; anything else
is refused rather than proposed.

Existing lines are judged by :mod:`lamina.cvmfs.existing`: the ones DUCC fails on are
reported in the edit (``broken``), never changed, and a line lamina adds at the path of a
digest-pinned line is noted (``notes``): DUCC would then publish two wishes at one path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from lamina.cvmfs import WishlistError, yaml_v2
from lamina.cvmfs.entries import WishEntry, parse_entry
from lamina.cvmfs.existing import ExistingLine, read_existing

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
    broken: list[ExistingLine] = field(default_factory=list)  # existing lines DUCC fails on
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added)


def _read(text: str, what: str) -> yaml_v2.Document:
    doc = yaml_v2.read(text, what)
    if LIST_KEY not in doc.top_keys():
        raise WishlistError(f"{what} has no top-level '{LIST_KEY}:' list")
    return doc


def existing_entries(text: str, what: str = "wishlist") -> list[ExistingLine]:
    """The ``input:`` elements of ``text`` and DUCC's verdict on each."""
    try:
        return read_existing(_read(text, what))
    except WishlistError as exc:
        if exc.message.startswith("line "):
            raise WishlistError(f"{what}:{exc.message.removeprefix('line ')}") from None
        raise


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


def _eol(line: str) -> str:
    return next((e for e in ("\r\n", "\n", "\r") if line.endswith(e)), "")


def _style(lines: list[str], start: int, end: int) -> tuple[ListStyle, int]:
    """The majority style of the block's items, and the line to insert after."""
    items = [m for line in lines[start + 1:end] if (m := _ITEM.match(line))]
    last = start
    for i in range(start + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            last = i
    anchor_line = lines[last]
    eol = _eol(anchor_line) or next((e for line in lines if (e := _eol(line))), "\n")
    if not items:  # an empty list: follow commented-out entries, else the upstream style
        items = [m for line in lines[start + 1:end] if (m := _COMMENTED_ITEM.match(line))]
    if not items:
        return ListStyle(DEFAULT_INDENT, " ", DEFAULT_QUOTE, eol), last
    indent = _majority([m.group("indent") for m in items], [])
    gap = _majority([m.group("gap") for m in items], [" "])
    quote = _majority([m.group("quote") for m in items], ["'", '"', ""])
    return ListStyle(indent, gap, quote, eol), last


def _pinned_notes(entry: WishEntry, old: Sequence[ExistingLine]) -> list[str]:
    notes = []
    for line in old:
        e = line.entry
        if (e is not None and e.digest is not None and e.tag is not None
                and (e.scheme, e.registry, e.repository) == (
                    entry.scheme, entry.registry, entry.repository)
                and entry.tag is not None and e.publishes_at(entry.tag)):
            notes.append(f"line {line.line}: {line.shown()} pins {e.digest} and publishes at "
                         f"the same path {entry.cvmfs_path}: DUCC would fill that path from "
                         "two wishes, the pinned digest and the tag")
    return notes


def add_entries(text: str, urls: Sequence[str], what: str = "wishlist") -> WishlistEdit:
    """Add each of ``urls`` not already listed nor covered by an existing line; return the
    new text with DUCC's verdict on the existing lines.

    Raises :class:`EntryError` for a URL the unpacker would reject and
    :class:`WishlistError` when the file cannot be edited by inserting lines.
    """
    old = existing_entries(text, what)
    old_texts = [line.text for line in old]
    parsed_old = [line.entry for line in old if line.entry is not None]
    edit = WishlistEdit(text=text, broken=[line for line in old if line.problem])
    chosen: list[WishEntry] = []
    for url in urls:
        entry = parse_entry(url)
        if url in old_texts or url in edit.added:
            edit.skipped.append((url, "already listed"))
            continue
        cover = next((e for e in parsed_old + chosen if e.covers(entry)), None)
        if cover is not None:
            why = "already listed" if cover == entry else f"covered by {cover.url}"
            edit.skipped.append((url, why))
            continue
        chosen.append(entry)
        edit.added.append(url)
        edit.notes += _pinned_notes(entry, old)
    if not edit.added:
        return edit

    lines = text.splitlines(keepends=True)
    start, end = _block(lines, what)
    style, last = _style(lines, start, end)
    new_lines = [style.render(url) for url in edit.added]
    head, tail = lines[:last + 1], lines[last + 1:]
    if head[-1].endswith(("\n", "\r")):
        inserted = "".join(line + style.eol for line in new_lines)
    else:  # the entry was the file's last line, without a newline: keep it that way
        inserted = style.eol + style.eol.join(new_lines)
    edit.text = "".join(head) + inserted + "".join(tail)
    _verify(text, edit, what)
    return edit


def _item_shapes(doc: yaml_v2.Document) -> tuple[object, ...]:
    shape = doc.shape(LIST_KEY)
    return shape[1] if shape is not None and isinstance(shape[1], tuple) else ()


def _verify(old_text: str, edit: WishlistEdit, what: str) -> None:
    """Refuse an edit whose meaning is not exactly "the same file plus these entries"."""
    old_doc = _read(old_text, what)
    new_doc = _read(edit.text, f"{what} (edited)")
    if new_doc.top_keys() != old_doc.top_keys():
        raise WishlistError(f"{what}: the edit would change the top-level keys; refusing it")
    old_items, new_items = _item_shapes(old_doc), _item_shapes(new_doc)
    appended = [item.value for item in yaml_v2.input_items(new_doc)][len(old_items):]
    if tuple(new_items[:len(old_items)]) != tuple(old_items) or appended != edit.added:
        raise WishlistError(f"{what}: the edit would not read back as the old entries plus the "
                            "new ones; refusing it (is the list written in an unusual style?)")
    for key in old_doc.top_keys():
        if key != LIST_KEY and new_doc.shape(key) != old_doc.shape(key):
            raise WishlistError(f"{what}: the edit would change '{key}'; refusing it")
