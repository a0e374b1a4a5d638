"""Property: whatever the wishlist looks like, adding entries only inserts lines.

Hypothesis writes wishlist files in the styles found in the wild (indent 0/2/4, one or two
spaces after the dash, single/double/no quotes mixed, comments anywhere, blank lines, CRLF, a
missing final newline, keys before and after the list, tabs after entries and keys) and entry
sets drawn from the same small pool, so that duplicates and wildcard coverage happen often.

Every expectation comes from the test's own model of the file it wrote (which lines are
entries, with which values, where the list starts and ends, which keys precede and follow),
never from parsing the file with the code under test or reading it back: the entries to
add come from an oracle written here from DUCC's rules, not from lamina's code:
a tab after a token is a blank (gopkg.in/yaml.v2 scannerc.go yaml_parser_scan_to_next_token),
a line without scheme means https:// (ducc/lib/parse.go ParseImage), and a tag pattern keeps
the tags its `*`->`.*` expression matches whole (ducc/lib/image.go filterUsingGlob; for the
patterns of this pool Python's re and Go's regexp agree).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from hypothesis import event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from lamina.cvmfs.wishlist import add_entries

REPOS = ["registry.cern.ch/hep/app", "registry.cern.ch/hep/ml",
         "gitlab-registry.cern.ch/atlas/athena/analysisbase", "quay.io:8443/x/y"]
TAGS = ["1.0", "1.0-amd64", "1.0-arm64", "1.1", "2.0", "1.*", "2.0-*", "latest"]
URLS = [f"https://{r}:{t}" for r in REPOS for t in TAGS]
PREFIX_KEYS = ["version: 1", "user: cvmfsunpacker", "cvmfs_repo: 'unpacked.cern.ch'",
               "output_format: 'https://gitlab-registry.cern.ch/unpacked/sync/$(image)'"]


@dataclass
class Item:
    url: str
    quote: str
    comment: str
    no_scheme: bool


def _quoted(value: str, quote: str) -> str:
    return f"{quote}{value}{quote}"


comments = st.sampled_from(["# ATLAS", "# CMS images", "#", "# - 'https://old.io/a/b:1'",
                            "#-- section --"])
items = st.builds(Item, st.sampled_from(URLS), st.sampled_from(["'", '"', ""]),
                  st.sampled_from(["", "  # pinned", " # why", "\t", "\t# tabbed", " \t"]),
                  st.booleans())


@dataclass
class Wishlist:
    """A generated file and what the generator knows about it, line by line."""

    text: str
    entries: list[str]  # the values of the list's items, as written (a scheme or not)
    keys: list[str]  # the top-level keys, in order
    list_start: int  # index of the `input:` line
    last_entry: int | None  # index of the last item line
    list_end: int  # index of the first line after the list's body (the tail's first line)


@st.composite
def wishlists(draw: st.DrawFn) -> Wishlist:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    indent = draw(st.sampled_from(["", "  ", "    "]))
    gap = draw(st.sampled_from([" ", "  "]))
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(draw(comments))
    prefix = draw(st.lists(st.sampled_from(PREFIX_KEYS), unique=True, max_size=4))
    lines += prefix
    if draw(st.booleans()):
        lines.append("")
    list_start = len(lines)
    lines.append("input:" + draw(st.sampled_from(["", "  # the wishlist", "\t"])))
    body = draw(st.lists(st.one_of(items, comments, st.just("")), max_size=12))
    entries: list[str] = []
    last_entry: int | None = None
    for part in body:
        if isinstance(part, Item):
            value = part.url.removeprefix("https://") if part.no_scheme else part.url
            last_entry = len(lines)
            entries.append(value)
            lines.append(f"{indent}-{gap}{_quoted(value, part.quote)}{part.comment}")
        elif part == "":
            lines.append("")
        else:
            lines.append(" " * draw(st.integers(0, 6)) + part)
    list_end = len(lines)
    tail = draw(st.sampled_from(["", "ignoreErrors:\n  - 'https://registry.cern.ch/*'",
                                 "# trailing comment", "extra: {a: 1}", "..."]))
    lines += tail.splitlines()
    keys = [line.split(":", 1)[0] for line in prefix] + ["input"] + (
        [tail.split(":", 1)[0]] if tail.split(":", 1)[0] in ("ignoreErrors", "extra") else [])
    text = eol.join(lines)
    if draw(st.booleans()):
        text += eol
    return Wishlist(text, entries, keys, list_start, last_entry, list_end)


def _load(text: str) -> object:
    # the oracle's reader: a YAML 1.2 reader, after turning the tabs (all placed where yaml.v2
    # takes them for blanks) into spaces
    return YAML(typ="safe").load(io.StringIO(text.replace("\t", " ")))


_ENTRY = re.compile(r"^https://(?P<host>[^/]+)/(?P<repo>[^:]+):(?P<tag>.+)$")


def _oracle_covers(old: str, new: str) -> bool:
    old = old if "://" in old else "https://" + old
    a, b = _ENTRY.match(old), _ENTRY.match(new)
    assert a is not None and b is not None
    if (a["host"], a["repo"]) != (b["host"], b["repo"]):
        return False
    if "*" in a["tag"]:
        return re.fullmatch(a["tag"].replace("*", ".*"), b["tag"]) is not None
    return a["tag"] == b["tag"]


def _expected_added(old_items: list[str], urls: list[str]) -> list[str]:
    added: list[str] = []
    for url in urls:
        if url in old_items or url in added:
            continue
        if any(_oracle_covers(o, url) for o in old_items + added):
            continue
        added.append(url)
    return added


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    it = iter(new)
    return all(any(line == candidate for candidate in it) for line in old)


# an entry line as a YAML list item: indent, dash, blanks, the value quoted alike or not
_ITEM_LINE = re.compile(r"^ *- +(?P<q>['\"]?)(?P<value>[^'\"\s]+)(?P=q)\r?$")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(wishlists(), st.lists(st.sampled_from(URLS), min_size=1, max_size=8))
def test_adding_only_inserts_lines(wishlist: Wishlist, urls: list[str]) -> None:
    text = wishlist.text
    old_items = wishlist.entries
    before = _load(text)
    assert isinstance(before, dict)
    # the model and an independent YAML reader agree on the file (a check of the test itself)
    assert [str(i) for i in (before.get("input") or [])] == old_items
    assert list(before) == wishlist.keys

    edit = add_entries(text, urls)
    event(f"added {min(len(edit.added), 3)}+, skipped {min(len(edit.skipped), 3)}+")
    event("CRLF" if "\r\n" in text else "LF")
    event("tabs" if "\t" in text else "no tabs")

    assert edit.added == _expected_added(old_items, urls)
    assert edit.broken == []  # every line of the pool is one DUCC can use
    old_lines, new_lines = text.splitlines(), edit.text.splitlines()
    assert _is_subsequence(old_lines, new_lines)
    assert len(new_lines) == len(old_lines) + len(edit.added)
    # the new entries are one block of item lines, in request order, inside the list: after
    # its last entry (or its `input:` line) and before whatever follows the list
    added = len(edit.added)
    first = (wishlist.last_entry if wishlist.last_entry is not None else wishlist.list_start) + 1
    places = [at for at in range(first, wishlist.list_end + 1)
              if new_lines[:at] == old_lines[:at] and new_lines[at + added:] == old_lines[at:]]
    assert places, (text, edit.text)
    inserted = new_lines[places[0]:places[0] + added]
    values = [m["value"] if (m := _ITEM_LINE.match(line)) else line for line in inserted]
    assert values == edit.added
    if "\r\n" in text:  # the file's line endings, never a mix
        assert "\n" not in edit.text.replace("\r\n", "")
    assert edit.text.endswith(("\n", "\r\n")) == text.endswith(("\n", "\r\n"))
    after = _load(edit.text)
    assert isinstance(after, dict)
    assert list(after) == list(before)
    assert [str(i) for i in (after.get("input") or [])] == old_items + edit.added
    for key in before:
        if key != "input":
            assert after[key] == before[key]
    # every request is either added or explained
    assert {u for u in urls} == set(edit.added) | {u for u, _ in edit.skipped}
    # idempotent
    again = add_entries(edit.text, urls)
    assert again.text == edit.text and again.added == []
