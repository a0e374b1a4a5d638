"""The wishlist read as DUCC reads it: gopkg.in/yaml.v2 v2.2.8 (ducc/go.mod) unmarshalling into
YamlRecipeV1{Input []string} (ducc/lib/recipe.go). Expected values come from yaml.v2's
scannerc.go (where tabs are blanks), parserc.go (%YAML versions), decode.go `scalar` and
resolve.go (what a non-string item becomes)."""

from __future__ import annotations

import pytest

from lamina.cvmfs import WishlistError, yaml_v2


def items(text: str) -> list[tuple[int, str | None]]:
    return [(i.line, i.value) for i in yaml_v2.input_items(yaml_v2.read(text, "recipe.yaml"))]


@pytest.mark.parametrize("text", [
    "input:\n  - 'https://r.io/a:1'\t\n",          # after a quoted scalar
    "input:\n  - https://r.io/a:1\t\n",            # after a plain scalar
    "input:\n  - 'https://r.io/a:1'\t# c\n",       # before a comment
    "input:\t\n  - 'https://r.io/a:1'\n",          # after a key's ':'
    "input:\n  - 'https://r.io/a:1' \t \n",        # mixed with spaces
    "input:\r\n  - 'https://r.io/a:1'\t\r\n",
])
def test_tabs_after_a_token_are_blanks(text: str) -> None:
    # yaml_parser_scan_to_next_token eats '\t' when simple_key_allowed is false: after a
    # scalar, and after the ':' of a simple key
    assert items(text) == [(2, "https://r.io/a:1")]


@pytest.mark.parametrize(("text", "line"), [
    ("input:\n  -\t'https://r.io/a:1'\n", 2),      # after '-' a simple key may start
    ("input:\n\t- 'https://r.io/a:1'\n", 2),       # at the start of a line
])
def test_tabs_where_a_key_may_start_are_errors(text: str, line: int) -> None:
    with pytest.raises(WishlistError) as info:
        yaml_v2.read(text, "recipe.yaml")
    assert str(info.value).startswith(f"recipe.yaml:{line}: not valid YAML for DUCC's reader "
                                      "(yaml.v2): ")


def test_where_libyaml_and_the_go_port_differ() -> None:
    # yaml.v2 scannerc.go knows the escape \' (libyaml 0.2.5 refuses it) ...
    assert items('input:\n  - "https://r.io/a:it\\\'s"\n') == [(2, "https://r.io/a:it's")]
    # ... but not \/ (libyaml 0.2.5 accepts it)
    with pytest.raises(WishlistError) as info:
        yaml_v2.read('input:\n  - "https:\\/\\/r.io/a:1"\n', "recipe.yaml")
    assert str(info.value) == ("recipe.yaml:2: yaml.v2 does not know the escape '\\/' ('found "
                               "unknown escape character'), so DUCC cannot read this file")
    # parserc.go accepts %YAML 1.1 only
    with pytest.raises(WishlistError) as info:
        yaml_v2.read("%YAML 1.2\n---\ninput: []\n", "recipe.yaml")
    assert "yaml.v2 refuses %YAML 1.2 ('found incompatible YAML document')" in str(info.value)
    assert items("%YAML 1.1\n---\ninput: ['https://r.io/a:1']\n") == [(3, "https://r.io/a:1")]


def test_only_the_first_document_is_read() -> None:
    # yaml.Unmarshal parses one document; what follows is never scanned
    assert items("input:\n  - 'https://r.io/a:1'\n---\n[\n") == [(2, "https://r.io/a:1")]


def test_items_decoded_into_go_strings() -> None:
    text = ("input:\n"
            "  - 42\n"                 # resolved as an int, but a string field gets the text
            "  - true\n"
            "  - 2024-01-01\n"
            "  - ~\n"                  # null: the zero value, ""
            "  -\n"
            "  - 'null'\n"             # quoted: the string null
            "  - !!str null\n"
            "  - !!binary aHR0cHM6Ly9yLmlvL2E6MQ==\n"
            "  - !custom 'https://r.io/a:1'\n")
    assert items(text) == [(2, "42"), (3, "true"), (4, "2024-01-01"), (5, ""), (6, ""),
                           (7, "null"), (8, "null"), (9, "https://r.io/a:1"),
                           (10, "https://r.io/a:1")]


def test_mappings_and_lists_are_type_errors() -> None:
    doc = yaml_v2.read("input:\n  - https://r.io/a: 1\n  - [x]\n", "recipe.yaml")
    got = yaml_v2.input_items(doc)
    assert [(i.line, i.value) for i in got] == [(2, None), (3, None)]
    assert got[0].problem == ("a mapping, not a string: yaml.v2 fails with 'cannot unmarshal "
                              "!!map into string' and DUCC converts nothing this pass "
                              "('Impossible to parse the recipe file')")
    assert got[1].problem is not None and "'cannot unmarshal !!seq into string'" in got[1].problem
