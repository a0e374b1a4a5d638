"""DUCC's tag wildcards: which tags a wishlist pattern such as ``1.[0-9]*`` expands to.

``filterUsingGlob`` (``cvmfs/cvmfs`` ``ducc/lib/image.go``) replaces every ``*`` of the tag by
``.*``, compiles the result with Go's ``regexp.Compile`` (RE2 syntax, Perl flags), switches it
to leftmost-longest and keeps a tag when the match equals the whole tag. So the "glob" is a
Go regular expression: ``.`` matches any character, character classes (``[0-9]``, ``\\d``,
``\\pL``; ``[[:digit:]]`` would too, but its colons make ``ParseImage`` refuse the line first),
alternation, groups, ``+``, ``?`` and ``{n,m}`` all work, and a pattern Go refuses to compile
expands to no tag at all (the error is swallowed). Python's
``re`` differs from RE2 (``[[:alpha:]]``, ``\\z``, ``{,3}``, possessive ``*+``, back-references,
exponential backtracking), so this module parses RE2 syntax itself, following Go's
``src/regexp/syntax/parse.go`` for what is accepted, and matches by walking sets of positions
(no backtracking). The leftmost-longest match equals the whole tag exactly when the
expression matches the whole tag, which is what :meth:`TagGlob.matches` computes.

Tags are ASCII (the distribution-spec tag grammar), so classes are evaluated over ASCII
(:mod:`lamina.cvmfs.go_regexp_classes`); the expression is parsed by
:mod:`lamina.cvmfs.go_regexp`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamina.cvmfs.go_regexp import GoRegexpError, Node, parse
from lamina.cvmfs.go_regexp_classes import Unevaluable, is_word

GlobError = GoRegexpError  # Go refuses the expression: DUCC expands the glob to no tag
GlobUnknown = Unevaluable  # lamina cannot tell: the glob is taken to cover nothing


def _holds(what: str, text: str, i: int) -> bool:
    n = len(text)
    return {"bot": i == 0, "eot": i == n,
            "bol": i == 0 or text[i - 1] == "\n", "eol": i == n or text[i] == "\n",
            "wordb": is_word(text, i - 1) != is_word(text, i),
            "nowordb": is_word(text, i - 1) == is_word(text, i)}[what]


def _run(node: Node, text: str, at: frozenset[int]) -> frozenset[int]:
    if not at:
        return at
    if node.kind == "chars":
        return frozenset(i + 1 for i in at if i < len(text) and ord(text[i]) in node.chars)
    if node.kind == "assert":
        return frozenset(i for i in at if _holds(node.what, text, i))
    if node.kind == "concat":
        for sub in node.subs:
            at = _run(sub, text, at)
        return at
    if node.kind == "alt":
        return frozenset().union(*(_run(sub, text, at) for sub in node.subs))
    sub = node.subs[0]
    for _ in range(node.low):
        at = _run(sub, text, at)
    reached, frontier = set(at), at
    extra = node.high - node.low if node.high is not None else None
    while frontier and (extra is None or extra > 0):
        frontier = _run(sub, text, frontier) - reached
        reached |= frontier
        extra = None if extra is None else extra - 1
    return frozenset(reached)


@dataclass(frozen=True)
class TagGlob:
    """A wishlist tag pattern compiled as DUCC compiles it."""

    pattern: str
    regexp: str
    root: Node

    def matches(self, tag: str) -> bool:
        """Whether DUCC's expansion of the pattern includes ``tag``."""
        try:
            return tag != "" and len(tag) in _run(self.root, tag, frozenset({0}))
        except RecursionError:
            return False


def compile_glob(pattern: str) -> TagGlob:
    """Compile ``pattern`` as ``filterUsingGlob`` does; :class:`GlobError` when Go's
    ``regexp.Compile`` would refuse it, :class:`GlobUnknown` when lamina cannot tell."""
    regexp = pattern.replace("*", ".*")
    return TagGlob(pattern, regexp, parse(regexp))
