"""Character classes of Go's regexp syntax, evaluated over ASCII.

What ``[[:digit:]]``, ``\\d``, ``\\pL`` or ``(?i)k`` match, as Go's ``regexp/syntax`` defines
them (``perl_groups.go``, ``parse.go`` ``parseNamedClass``/``parseUnicodeClass``, case folding
with ``unicode.SimpleFold``), restricted to the characters a tag can hold: the
distribution-spec tag grammar is ASCII, so a class is the set of ASCII code points it matches.
"""

from __future__ import annotations

import unicodedata

ASCII = frozenset(range(128))
WORD = frozenset(map(ord, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"))
PERL = {"d": frozenset(range(48, 58)), "s": frozenset(map(ord, "\t\n\f\r ")), "w": WORD}


def rng(*spans: str) -> frozenset[int]:
    return frozenset(c for span in spans for c in range(ord(span[0]), ord(span[-1]) + 1))


POSIX = {
    "alnum": rng("09", "AZ", "az"), "alpha": rng("AZ", "az"), "ascii": ASCII,
    "blank": frozenset(map(ord, "\t ")), "cntrl": rng("\x00\x1f") | {0x7F},
    "digit": rng("09"), "graph": rng("!~"), "lower": rng("az"), "print": rng(" ~"),
    "punct": rng("!/", ":@", "[`", "{~"), "space": frozenset(map(ord, "\t\n\v\f\r ")),
    "upper": rng("AZ"), "word": WORD,
    "xdigit": rng("09", "AF", "af"),
}
# Go's unicode.Categories names; evaluated over ASCII with Python's unicodedata
CATEGORIES = {"C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me",
               "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S",
               "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs"}
SCRIPTS_ON_ASCII = {"Latin": rng("AZ", "az"), "Any": ASCII, "Inherited": frozenset()}
FOLDS_TO_ASCII = {0x212A: frozenset(map(ord, "kK")), 0x017F: frozenset(map(ord, "sS"))}


class Unevaluable(ValueError):
    """Something lamina cannot evaluate (a Unicode script other than Latin or Common)."""


def fold(chars: frozenset[int]) -> frozenset[int]:
    out = set(chars)
    for c in chars:
        if c < 128 and chr(c).isalpha():
            out.add(ord(chr(c).swapcase()))
    return frozenset(out)


def fold_range(lo: int, hi: int) -> frozenset[int]:
    chars = frozenset(range(lo, min(hi, 127) + 1))
    extra = frozenset().union(*(v for k, v in FOLDS_TO_ASCII.items() if lo <= k <= hi))
    return fold(chars) | extra


def unicode_class(name: str, frag: str) -> frozenset[int]:
    if name in CATEGORIES:
        return frozenset(c for c in ASCII if unicodedata.category(chr(c)).startswith(name))
    if name in SCRIPTS_ON_ASCII:
        return SCRIPTS_ON_ASCII[name]
    if name == "Common":
        return ASCII - SCRIPTS_ON_ASCII["Latin"]
    raise Unevaluable(f"lamina cannot evaluate the Unicode class `{frag}`")


def is_word(text: str, i: int) -> bool:
    return 0 <= i < len(text) and ord(text[i]) in WORD
