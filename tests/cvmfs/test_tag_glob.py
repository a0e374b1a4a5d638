"""DUCC's tag wildcards, as ducc/lib/image.go filterUsingGlob computes them: `*` -> `.*`, Go's
regexp.Compile (RE2 syntax, Perl flags), leftmost-longest match equal to the whole tag.

Every expected value is worked out by hand from that function and from Go's
src/regexp/syntax/parse.go (what compiles, and what each construct means), not from lamina."""

from __future__ import annotations

import pytest

from lamina.cvmfs.tag_glob import GlobError, compile_glob

MATCHES = [
    # (glob, tag, kept by DUCC?)
    ("21.2.1*", "21.2.10", True),          # the documented example (cpt-ducc)
    ("21.2.1*", "21.3.10", False),
    ("1.0*", "1x0", True),                 # '.' is any character: nothing is escaped
    ("v1*", "xv1", False),                 # the match must be the whole tag
    ("*", "latest", True),
    ("1.[0-9]*", "1.5", True),             # character class
    ("1.[0-9]*", "1.", False),             # '[0-9]' needs a character
    ("1.[0-9]*", "1.x5", False),
    ("[^a-z]*", "1abc", True),             # negated class, then '.*'
    ("[^a-z]*", "abc", False),
    ("v\\d*", "v2", True),                 # Perl class \d
    ("v\\d*", "vx", False),
    ("\\w\\W*", "a-b", True),
    ("\\pL*", "a1", True),                 # Unicode class L: letters
    ("\\pN*", "a1", False),
    ("\\p{Lu}*", "A", True),
    ("\\PL*", "1a", True),
    ("(rc|beta)*", "beta2", True),         # alternation in a group
    ("(rc|beta)*", "alpha", False),
    ("1.0|2.0*", "1.0", True),             # top-level alternation: 1.0 or 2.0.*
    ("1.0|2.0*", "1.0-arm64", False),
    ("x{2}*", "xx-1", True),               # counted repeat
    ("x{2}*", "x-1", False),
    ("x{2,}*", "xxxx", True),
    ("x{1,2}y*", "xxxy", False),
    ("x{,2}*", "x{,2}", True),             # '{' without a number first is a literal (parseRepeat)
    ("x{*", "x{", True),
    ("a+*", "aaab", True),
    ("ab?*", "a", True),
    ("(?i)RC*", "rc1", True),              # flags: case folding
    ("(?i:RC)x*", "rcx", True),
    ("(?i:RC)x*", "rcX", False),
    ("\\Q1.0\\E*", "1.0-amd64", True),     # \Q..\E quotes: '.' is literal there
    ("\\Q1.0\\E*", "1x0", False),
    ("\\.*", ".", True),                   # '\*' is '\.*': an escaped dot, then '*'
    ("\\.*", "x", False),
    ("^1*$", "1.0", True),                 # anchors are fine
    ("[]]*", "]", True),                   # ']' first in a class is a literal
    ("[a-]*", "-", True),                  # '-' last in a class is a literal
    ("\\x41*", "A", True),
    ("\\x{61}*", "a", True),
    ("\\101*", "A", True),                 # octal escape
    ("(?P<v>1)*", "1.0", True),            # named groups
    ("(?<v>1)*", "1.0", True),             # (Go 1.22 and later)
    ("(a*)*", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", True),
]


@pytest.mark.parametrize(("glob", "tag", "kept"), MATCHES,
                         ids=[f"{g}~{t}" for g, t, _ in MATCHES])
def test_tags_a_glob_expands_to(glob: str, tag: str, kept: bool) -> None:
    assert compile_glob(glob).matches(tag) is kept


REFUSED = [
    # (glob, Go's error code): DUCC's filterUsingGlob then returns no tag at all
    ("*+", "invalid nested repetition operator"),        # '.*+': possessive is not RE2
    ("a{2}{3}*", "invalid nested repetition operator"),
    ("+*", "missing argument to repetition operator"),
    ("x{1001}*", "invalid repeat count"),
    ("((x{100}){100})*", "invalid repeat count"),          # nested counts multiply (1e4)
    ("x{3,2}*", "invalid repeat count"),
    ("[z-a]*", "invalid character class range"),
    ("[[:foo:]]*", "invalid character class range"),
    ("(1*", "missing closing )"),
    ("1)*", "unexpected )"),
    ("[1*", "missing closing ]"),
    ("\\1*", "invalid escape sequence"),                   # no back-references
    ("\\8*", "invalid escape sequence"),
    ("\\Z*", "invalid escape sequence"),                   # Go has \z only
    ("[\\b]*", "invalid escape sequence"),
    ("(?=1)*", "invalid or unsupported Perl syntax"),      # no look-ahead
    ("(?!1)*", "invalid or unsupported Perl syntax"),
    ("(?i-)*", "invalid or unsupported Perl syntax"),
    ("(?P<>1)*", "invalid named capture"),
    ("(?<=1)*", "invalid named capture"),                  # parsed as a name, then refused
    ("(?P<n>1)(?P<n>2)*", "duplicate capture group name"),
    ("1\\", "trailing backslash at end of expression"),
]


@pytest.mark.parametrize(("glob", "code"), REFUSED, ids=[g for g, _ in REFUSED])
def test_globs_go_refuses_expand_to_nothing(glob: str, code: str) -> None:
    with pytest.raises(GlobError) as info:
        compile_glob(glob)
    assert code in str(info.value)


def test_an_empty_alternative_is_no_missing_argument() -> None:
    # '(|.*)': the star follows '.', so it has its argument; the group matches anything
    assert compile_glob("(|*)").matches("anything")


def test_unicode_scripts_are_known_as_go_knows_them() -> None:
    # Go's unicode package has the scripts (regexp/syntax parse.go unicodeTable): Greek
    # compiles and matches no ASCII tag; an unknown name is ErrInvalidCharRange
    assert not compile_glob("\\p{Greek}*").matches("a1")
    assert compile_glob("\\p{Latin}*").matches("a1")
    with pytest.raises(GlobError) as info:
        compile_glob("\\p{Nope}*")
    assert str(info.value) == "error parsing regexp: invalid character class range: `\\p{Nope}`"


def test_no_exponential_backtracking() -> None:
    # (a|a)* against 60 a's and a final c: a backtracking engine takes 2^60 steps; RE2 is
    # an automaton, so this returns at once (a hang here would hit the test timeout)
    assert not compile_glob("(a|a)(a|a)*b").matches("a" * 60 + "c")
