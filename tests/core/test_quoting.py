"""The quoting layer: what each rendering context gives back, and the name patterns."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina import quoting
from lamina.errors import RecipeError
from lamina.quoting import Origin
from lamina.schemas import ecma_regex
from lamina.yamlio import YamlDoc
from tests.core.containerfile_reader import instructions, pairs, process_word

ORIGIN = Origin(YamlDoc(Path("images/x/image.yaml"), {}, {("env", "A"): 7}), ("env", "A"))
HOSTILE = ["café", "costs $5", "${X}", "$X", "`id`", "it's", 'say "hi"', "back\\slash",
           "end\\", "\\n", "\\\\", " lead", "trail ", "a\tb", "FROM x", "RUN y", "\\$HOME",
           "$", "\ufeffbom", "\u2028", "\u00a0", "#c", "k=v", "--flag", "", "日本語", "😀"]
# anything a one-line context can carry: no C0/C1 control character except tab
carried = st.text(st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t"))


@given(value=st.one_of(st.sampled_from(HOSTILE), carried))
@settings(max_examples=400, deadline=None, derandomize=True)
def test_a_double_quoted_value_comes_back_exactly(value: str) -> None:
    text = f"FROM scratch\nENV A={quoting.double_quoted(value)}\n"
    env = instructions(text)[1]
    assert pairs(env) == {"A": value}
    assert process_word(quoting.instruction_arg(value, ORIGIN)) == value


def test_the_reader_catches_the_old_json_rendering() -> None:
    """json.dumps (what lamina used to write) changes these values: the check can fail."""
    for value in ("costs $5", "café", "${X}"):
        env = instructions(f"FROM scratch\nENV A={json.dumps(value)}\n")[1]
        assert pairs(env)["A"] != value


def test_bare_arguments_stay_bare_and_others_are_quoted() -> None:
    assert quoting.instruction_arg("/opt/hello", ORIGIN) == "/opt/hello"
    assert quoting.instruction_arg("analyst", ORIGIN) == "analyst"
    assert quoting.instruction_arg("/a b", ORIGIN) == '"/a b"'
    assert quoting.instruction_arg("C.UTF-8", ORIGIN, always_quote=True) == '"C.UTF-8"'
    assert quoting.double_quoted('a"$\\b') == '"a\\"\\$\\\\b"'


@pytest.mark.parametrize(("value", "found"), [
    ("a\nb", "a newline"), ("a\rb", "a carriage return"), ("a\x00", "a NUL byte"),
    ("\x1b[31m", "the control character U+001B"), ("\x7f", "the control character U+007F"),
    ("\x85", "the control character U+0085"), ("\ud800", "a lone surrogate (not UTF-8 text)"),
])
def test_values_a_line_cannot_carry_are_refused_located(value: str, found: str) -> None:
    with pytest.raises(RecipeError) as caught:
        quoting.instruction_arg(value, ORIGIN)
    assert str(caught.value) == (f"images/x/image.yaml:7: env.A: contains {found}, which a "
                                 "Containerfile instruction cannot carry; expected one line "
                                 "of text")
    with pytest.raises(RecipeError, match="which a RUN line cannot carry"):
        quoting.shell_word(value, ORIGIN)


def test_json_form_keeps_unicode_and_newlines_and_refuses_nul() -> None:
    assert quoting.json_args(["café", "a\nb"], ORIGIN) == '["café", "a\\nb"]'
    parsed = instructions('FROM scratch\nCMD ["café", "a\\nb", "$X"]\n')[1]
    assert parsed.json and parsed.value == ("café", "a\nb", "$X")
    with pytest.raises(RecipeError, match=r"env\.A\[1\]: contains a NUL byte, which a "
                                          "command argument cannot carry"):
        quoting.json_args(["ok", "a\x00"], ORIGIN)


def test_copy_arguments_use_the_json_form_when_a_path_has_a_space() -> None:
    plain = quoting.copy_args([("layers/x/files", ORIGIN)], ("/opt/x/", ORIGIN))
    assert plain == "layers/x/files /opt/x/"
    spaced = quoting.copy_args([("layers/x/my files", ORIGIN)], ("/opt/a b$c/", ORIGIN))
    copy = instructions(f"FROM scratch\nCOPY --chmod=0644 {spaced}\n")[1]
    assert copy.json and copy.flags == ("--chmod=0644",)
    assert [process_word(v) for v in copy.value] == ["layers/x/my files", "/opt/a b$c/"]


def test_a_shell_path_is_never_an_option() -> None:
    assert quoting.shell_path("-r.lock", ORIGIN) == "./-r.lock"
    assert quoting.shell_path("req.lock", ORIGIN) == "req.lock"
    assert quoting.shell_path("a b", ORIGIN) == "'a b'"


def _schema_patterns() -> dict[str, set[str]]:
    """Every ``pattern`` in the shipped schemas → the JSON paths using it."""
    found: dict[str, set[str]] = {}

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.setdefault(value, set()).add(where)
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    for name in ("recipe", "image", "layer"):
        text = resources.files("lamina").joinpath(f"schema/{name}.schema.json").read_text()
        walk(json.loads(text), name)
    return found


# One value each pattern must accept; the test below fails when a pattern has none.
SAMPLES = {
    "^/": "/opt/x",
    "^https?://": "https://gitlab.cern.ch",
    "^https?://[!-~]+$": "http://deb.debian.org/debian",
    "^[a-z0-9][a-z0-9._-]*$": "my-image",
    "^[a-z0-9][a-z0-9.-]*$": "bookworm",
    "^[0-9]+(\\.[0-9]+)*$": "4.1.5",
    "^linux/(amd64|arm64|ppc64le)$": "linux/arm64",
    "^[A-Za-z_][A-Za-z0-9_]*$": "LC_ALL",
    "^[A-Za-z0-9][A-Za-z0-9._/-]*$": "org.opencontainers.image.title",
    "^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$": "1000:100",
    "^[a-z0-9][a-z0-9+.:=~-]*$": "libc6:amd64=2.36-9",
    "^3\\.[0-9]+$": "3.11",
    "^2\\.[0-9]+$": "2.36",
    "^[0-7]{3,4}$": "0644",
}


def test_every_schema_pattern_matches_the_whole_string() -> None:
    patterns = _schema_patterns()
    assert set(patterns) == set(SAMPLES), "add a sample for each new schema pattern"
    for pattern, sample in SAMPLES.items():
        regex = ecma_regex(pattern)
        assert regex.search(sample), pattern
        if pattern.endswith("$"):
            assert not regex.search(sample + "\n"), f"{pattern} accepts a trailing newline"
            assert not regex.search(sample + "\n" + sample), pattern
        assert re.search(pattern, sample + "\n") or not pattern.endswith("$")  # Python's $


def test_schema_name_patterns_are_the_quoting_patterns() -> None:
    patterns = _schema_patterns()
    for name in (quoting.ENV_NAME, quoting.LABEL_KEY, quoting.USER_NAME):
        assert f"^{name}$" in patterns, name
