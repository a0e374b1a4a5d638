"""DUCC's tag wildcards: which tags a wishlist pattern such as ``1.[0-9]*`` expands to.

``filterUsingGlob`` (``cvmfs/cvmfs`` ``ducc/lib/image.go``) replaces every ``*`` of the tag by
``.*``, compiles the result with Go's ``regexp.Compile`` (RE2 syntax, Perl flags), switches it
to leftmost-longest and keeps a tag when the match equals the whole tag. So the "glob" is a
Go regular expression: ``.`` matches any character, character classes (``[0-9]``, ``\\d``,
``\\pL``, Unicode scripts), alternation, groups, ``+``, ``?`` and ``{n,m}`` all work, and a
pattern Go refuses to compile expands to no tag at all (the error is swallowed).

Python's ``re`` is not RE2 (``[[:alpha:]]``, ``\\z``, possessive ``*+``, back-references,
look-around, exponential backtracking), so the pattern is compiled with Google's RE2 itself
(the ``google-re2`` wheel), the library whose syntax Go's ``regexp/syntax`` implements. The
few places where Go's parser is stricter than RE2's C++ one are checked here (duplicate group
names, ``src/regexp/syntax/parse.go`` ``ErrDuplicateGroupName``), and RE2's error texts are
given in Go's words (``src/regexp/syntax/parse.go`` ``ErrorCode``), which is what a user
comparing with DUCC's logs will search for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class GlobError(ValueError):
    """Go's ``regexp.Compile`` refuses the expression: DUCC expands the glob to no tag."""


# RE2 (C++) error text prefix -> Go's regexp/syntax ErrorCode text
_GO_WORDS = (
    ("bad repetition operator", "invalid nested repetition operator"),
    ("no argument for repetition operator", "missing argument to repetition operator"),
    ("invalid repetition size", "invalid repeat count"),
    ("invalid character class range", "invalid character class range"),
    ("invalid character class", "invalid character class"),
    ("missing ]", "missing closing ]"),
    ("missing )", "missing closing )"),
    ("unexpected )", "unexpected )"),
    ("invalid escape sequence", "invalid escape sequence"),
    ("trailing \\", "trailing backslash at end of expression"),
    ("invalid named capture group", "invalid named capture"),
    ("invalid perl operator: (?<", "invalid named capture"),  # Go parses (?<= as a name
    ("invalid perl operator", "invalid or unsupported Perl syntax"),
    ("invalid UTF-8", "invalid UTF-8"),
    ("pattern too large", "expression too large"),
)
_GROUP_NAME = re.compile(r"\(\?P?<([^>]*)>")


def _go_message(error: str) -> str:
    """RE2's text in the form of Go's ``syntax.Error.Error()``: ``error parsing regexp:
    <code>: `<expr>```."""
    for prefix, words in _GO_WORDS:
        if error.startswith(prefix):
            detail = error[len(prefix):].lstrip(": ")
            return f"error parsing regexp: {words}: `{detail}`"
    return f"error parsing regexp: {error}"


def _compile(regexp: str) -> Any:
    import re2  # a C++ extension: imported by the one command that needs it

    options = re2.Options()
    options.log_errors = False
    options.longest_match = True
    try:
        return re2.compile(regexp, options)
    except re2.error as exc:
        text = exc.args[0] if exc.args else str(exc)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        raise GlobError(_go_message(str(text))) from None


@dataclass(frozen=True)
class TagGlob:
    """A wishlist tag pattern compiled as DUCC compiles it."""

    pattern: str
    regexp: str
    compiled: Any

    def matches(self, tag: str) -> bool:
        """Whether DUCC's expansion of the pattern includes ``tag``: RE2 matches in linear
        time, so no pattern can make this slow."""
        return tag != "" and self.compiled.fullmatch(tag) is not None


def compile_glob(pattern: str) -> TagGlob:
    """Compile ``pattern`` as ``filterUsingGlob`` does; :class:`GlobError` when Go's
    ``regexp.Compile`` would refuse it."""
    regexp = pattern.replace("*", ".*")
    names = [name for name in _GROUP_NAME.findall(regexp) if name]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise GlobError(f"error parsing regexp: duplicate capture group name: `{duplicate}`")
    return TagGlob(pattern, regexp, _compile(regexp))
