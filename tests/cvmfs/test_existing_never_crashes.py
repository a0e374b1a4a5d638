"""Whatever an existing wishlist holds, lamina gives a verdict (or refuses the file in one
line), never a traceback: strings built from the characters that matter to DUCC's parsers
(url.Parse, ParseImage, the regexp glob) and YAML items of every kind."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.cvmfs import WishlistError
from lamina.cvmfs.existing import judge
from lamina.cvmfs.wishlist import add_entries
from lamina.cvmfs.yaml_v2 import Item

ALPHABET = st.sampled_from([
    *"ab1.:/@*[]()?{}|\\^$%#+-_ \t\x00é",
    "https://", "http://", "registry.cern.ch", "[::1]", ":5000", "sha256:", "e" * 64, "%25",
    "(?i)", "[[:", ":]]", "\\p{", "\\Q", "{1001}"])
texts = st.lists(ALPHABET, max_size=12).map("".join)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(texts)
def test_every_string_gets_a_verdict(text: str) -> None:
    verdict = judge(Item(3, text))
    assert (verdict.entry is None) == (verdict.problem is not None)
    assert "\n" not in verdict.report()


items = st.one_of(
    texts.map(lambda t: "'" + t.replace("'", "''") + "'"),
    st.sampled_from(["", "~", "42", "{a: 1}", "[x, y]", "!!binary Zm9v", "!!int x", "&a x",
                     "? k\n      : v", "|\n      literal"]))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(items, max_size=6))
def test_every_wishlist_gets_an_edit_or_one_line(elements: list[str]) -> None:
    text = "version: 1\ninput:\n" + "".join(f"    - {e}\n" for e in elements)
    try:
        edit = add_entries(text, ["https://registry.cern.ch/hep/app:1.0"])
    except WishlistError as exc:
        assert "\n" not in str(exc)
        return
    for line in edit.broken:
        assert "\n" not in line.report()


GLOB_ALPHABET = st.sampled_from([
    *"a1.*+?|()[]{}^$\\-,:=<>!P_dDwWpLQEx",
    "(?", "(?P<", "[:", ":]", "{2}", "{1,3}", "\\x{", "\\p{", "[^"])


@settings(max_examples=500, derandomize=True, deadline=None)
@given(st.lists(GLOB_ALPHABET, min_size=1, max_size=14).map("".join),
       st.sampled_from(["1.0", "a", "rc1-amd64", "x" * 40]))
def test_every_glob_compiles_or_is_refused(pattern: str, tag: str) -> None:
    from lamina.cvmfs.tag_glob import GlobError, compile_glob

    try:
        glob = compile_glob(pattern)
    except GlobError as exc:
        assert "\n" not in str(exc)
        return
    assert glob.matches(tag) in (True, False)
