"""Go's regexp syntax (RE2, ``regexp.Compile``'s Perl flags) parsed into a small tree.

DUCC compiles every tag glob with Go's ``regexp.Compile`` (see :mod:`lamina.cvmfs.tag_glob`),
so what compiles and what each construct means is Go's, followed from ``src/regexp/syntax/
parse.go`` (``parse``, ``parsePerlFlags``, ``parseRepeat``, ``repeatIsValid``,
``parseEscape``, ``parseClass``; named groups ``(?<name>)`` as in Go 1.22 and later). The
tree only keeps what decides a match: character sets (over ASCII, see
:mod:`lamina.cvmfs.go_regexp_classes`), empty-width assertions, concatenation, alternation and
counted repetition; captures, greediness and ``(?U)`` change no set of matched strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lamina.cvmfs.go_regexp_classes import (
    ASCII,
    PERL,
    POSIX,
    Unevaluable,
    fold,
    fold_range,
    unicode_class,
)

MAX_REPEAT = 1000  # regexp/syntax: ErrInvalidRepeatSize beyond this
MAX_HEIGHT = 1000  # regexp/syntax: ErrNestingDepth beyond this




class GoRegexpError(ValueError):
    """Go's ``regexp.Compile`` refuses the expression (the message is Go's)."""


@dataclass
class Node:
    kind: str  # chars | assert | concat | alt | repeat
    chars: frozenset[int] = frozenset()
    what: str = ""  # assert: bot | eot | bol | eol | wordb | nowordb
    subs: list[Node] = field(default_factory=list)
    low: int = 0
    high: int | None = None  # repeat: None = unbounded
    counted: bool = False  # a {n,m} repeat (OpRepeat), not * + ?


_ANY_BUT_NL = ASCII - {10}


@dataclass
class _Flags:
    fold: bool = False
    dotnl: bool = False
    oneline: bool = True  # (?m) clears it


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.pos = 0
        self.names: set[str] = set()
        self.depth = 0

    def error(self, code: str, frag: str) -> GoRegexpError:
        return GoRegexpError(f"error parsing regexp: {code}: `{frag}`")

    def peek(self, n: int = 0) -> str:
        return self.expr[self.pos + n] if self.pos + n < len(self.expr) else ""

    def parse(self) -> Node:
        node = self.alternation(_Flags(), top=True)
        if self.pos < len(self.expr):  # only a stray ')' stops the top level
            raise self.error("unexpected )", self.expr)
        return node

    def alternation(self, flags: _Flags, top: bool = False) -> Node:
        self.depth += 1
        if self.depth > MAX_HEIGHT:
            raise self.error("expression nests too deeply", self.expr)
        flags = _Flags(flags.fold, flags.dotnl, flags.oneline)
        branches: list[Node] = []
        seq: list[Node] = []
        last_repeat = ""
        while self.pos < len(self.expr):
            start = self.pos
            c = self.expr[self.pos]
            repeat = ""
            if c == "|":
                self.pos += 1
                branches.append(Node("concat", subs=seq))
                seq = []
            elif c == ")":
                if top:
                    raise self.error("unexpected )", self.expr)
                break
            elif c == "(":
                group = self.group(flags)
                if group is not None:
                    seq.append(group)
            elif c in "*+?{":
                bounds = self.repeat_bounds()
                if bounds is None:  # `{` that is not a repeat is a literal
                    self.pos += 1
                    seq.append(self.literal(ord("{"), flags))
                else:
                    low, high = bounds
                    if self.peek() == "?":  # non-greedy: the same set of matches
                        self.pos += 1
                    frag = self.expr[start:self.pos]
                    if last_repeat:
                        raise self.error("invalid nested repetition operator",
                                         last_repeat + frag)
                    if not seq:
                        raise self.error("missing argument to repetition operator", frag)
                    sub = seq.pop()
                    node = Node("repeat", subs=[sub], low=low, high=high, counted=c == "{")
                    if (low >= 2 or (high or 0) >= 2) and not _repeat_ok(node, MAX_REPEAT):
                        raise self.error("invalid repeat count", frag)
                    seq.append(node)
                    repeat = frag
            else:
                seq.append(self.atom(flags))
            last_repeat = repeat
        branches.append(Node("concat", subs=seq))
        self.depth -= 1
        return branches[0] if len(branches) == 1 else Node("alt", subs=branches)

    def repeat_bounds(self) -> tuple[int, int | None] | None:
        c = self.expr[self.pos]
        if c != "{":
            self.pos += 1
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        start, rest = self.pos, self.expr[self.pos + 1:]
        low, rest = _parse_int(rest)
        if low is None or not rest:
            return None
        high: int | None = low
        if rest[0] == ",":
            rest = rest[1:]
            if not rest:
                return None
            if rest[0] == "}":
                high = None
            else:
                high, rest = _parse_int(rest)
                if high is None:
                    return None
        if not rest or rest[0] != "}":
            return None
        self.pos = len(self.expr) - len(rest) + 1
        if low < 0 or low > MAX_REPEAT or (high is not None and (
                high < 0 or high > MAX_REPEAT or low > high)):
            raise self.error("invalid repeat count", self.expr[start:self.pos])
        return low, high

    def group(self, flags: _Flags) -> Node | None:
        start = self.pos
        if self.peek(1) != "?":
            self.pos += 1
            return self.close(self.alternation(flags), start)
        rest = self.expr[self.pos + 2:]
        if rest.startswith(("P<", "<")):  # named capture
            end = self.expr.find(">", self.pos)
            name = self.expr[self.pos + (4 if rest[0] == "P" else 3):end] if end >= 0 else ""
            if end < 0 or not name or not all(ch == "_" or (ch.isascii() and ch.isalnum())
                                              for ch in name):
                raise self.error("invalid named capture", self.expr[start:end + 1 or None])
            if name in self.names:
                raise self.error("duplicate capture group name", self.expr[start:end + 1])
            self.names.add(name)
            self.pos = end + 1
            return self.close(self.alternation(flags), start)
        self.pos += 2
        new, sign, saw = _Flags(flags.fold, flags.dotnl, flags.oneline), 1, False
        while self.pos < len(self.expr):
            c = self.expr[self.pos]
            self.pos += 1
            if c in "imsU":
                value = sign > 0
                if c == "i":
                    new.fold = value
                elif c == "m":
                    new.oneline = not value
                elif c == "s":
                    new.dotnl = value
                saw = True  # U (ungreedy) changes no match set
            elif c == "-" and sign > 0:
                sign, saw = -1, False
            elif c in ":)" and (sign > 0 or saw):
                if c == ")":
                    flags.fold, flags.dotnl, flags.oneline = new.fold, new.dotnl, new.oneline
                    return None
                return self.close(self.alternation(new), start)
            else:
                break
        raise self.error("invalid or unsupported Perl syntax", self.expr[start:self.pos])

    def close(self, node: Node, start: int) -> Node:
        if self.peek() != ")":
            raise self.error("missing closing )", self.expr)
        self.pos += 1
        return node

    def literal(self, code: int, flags: _Flags) -> Node:
        if flags.fold:
            return Node("chars", chars=fold_range(code, code))
        return Node("chars", chars=frozenset({code}) & ASCII)

    def atom(self, flags: _Flags) -> Node:
        c = self.expr[self.pos]
        if c == "[":
            return Node("chars", chars=self.char_class(flags))
        self.pos += 1
        if c == ".":
            return Node("chars", chars=ASCII if flags.dotnl else _ANY_BUT_NL)
        if c == "^":
            return Node("assert", what="bot" if flags.oneline else "bol")
        if c == "$":
            return Node("assert", what="eot" if flags.oneline else "eol")
        if c != "\\":
            return self.literal(ord(c), flags)
        nxt = self.peek()
        simple = {"A": "bot", "z": "eot", "b": "wordb", "B": "nowordb"}
        if nxt in simple:
            self.pos += 1
            return Node("assert", what=simple[nxt])
        if nxt == "Q":
            end = self.expr.find("\\E", self.pos + 1)
            text = self.expr[self.pos + 1:end if end >= 0 else None]
            self.pos = end + 2 if end >= 0 else len(self.expr)
            return Node("concat", subs=[self.literal(ord(ch), flags) for ch in text])
        self.pos -= 1
        chars = self.class_escape(flags)
        if chars is not None:
            return Node("chars", chars=chars)
        return self.literal(self.escape(), flags)

    def class_escape(self, flags: _Flags) -> frozenset[int] | None:
        """``\\d``-style and ``\\p``-style classes at ``pos`` (consumed), else None."""
        kind = self.peek(1)
        if kind.lower() in PERL and self.peek() == "\\":
            self.pos += 2
            chars = PERL[kind.lower()]
            return ASCII - chars if kind.isupper() else chars
        if self.peek() != "\\" or kind not in ("p", "P"):
            return None
        start = self.pos
        self.pos += 2
        if self.peek() == "{":
            end = self.expr.find("}", self.pos)
            if end < 0:
                raise self.error("invalid character class range", self.expr[start:])
            name, self.pos = self.expr[self.pos + 1:end], end + 1
        elif self.peek():
            name = self.peek()
            self.pos += 1
        else:
            raise self.error("invalid character class range", self.expr[start:])
        negate = kind == "P"
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        chars = unicode_class(name, self.expr[start:self.pos])
        if flags.fold:
            chars = fold(chars)
        return ASCII - chars if negate else chars

    def escape(self) -> int:
        """One escaped character at ``pos`` (``\\n``, ``\\x41``, ``\\.``, ...), consumed."""
        start = self.pos
        self.pos += 1
        c = self.peek()
        if not c:
            raise self.error("trailing backslash at end of expression", "")
        self.pos += 1
        if c in "1234567" and self.peek() not in tuple("01234567"):
            raise self.error("invalid escape sequence", self.expr[start:self.pos])
        if c in "01234567":
            value = int(c)
            for _ in range(2):
                if self.peek() and self.peek() in "01234567":
                    value = value * 8 + int(self.peek())
                    self.pos += 1
            return value
        if c == "x":
            if self.peek() == "{":
                end = self.expr.find("}", self.pos)
                digits = self.expr[self.pos + 1:end] if end >= 0 else ""
                if not digits or not all(d in "0123456789abcdefABCDEF" for d in digits) or \
                        int(digits, 16) > 0x10FFFF:
                    raise self.error("invalid escape sequence", self.expr[start:end + 1 or None])
                self.pos = end + 1
                return int(digits, 16)
            digits = self.expr[self.pos:self.pos + 2]
            if len(digits) < 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.error("invalid escape sequence", self.expr[start:self.pos + 2])
            self.pos += 2
            return int(digits, 16)
        named = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c in named:
            return named[c]
        if c.isascii() and not c.isalnum():
            return ord(c)
        raise self.error("invalid escape sequence", self.expr[start:self.pos])

    def char_class(self, flags: _Flags) -> frozenset[int]:
        start = self.pos
        self.pos += 1
        negate = self.peek() == "^"
        if negate:
            self.pos += 1
        chars: set[int] = set()
        first = True
        while first or self.peek() != "]":
            if not self.peek():
                raise self.error("missing closing ]", self.expr[start:])
            first = False
            if self.expr.startswith("[:", self.pos) and (end := self.expr.find(
                    ":]", self.pos + 2)) >= 0:
                name = self.expr[self.pos + 2:end]
                group = POSIX.get(name.removeprefix("^"))
                if group is None:
                    raise self.error("invalid character class range", self.expr[self.pos:end + 2])
                self.pos = end + 2
                group = fold(group) if flags.fold else group
                chars |= (ASCII - group) if name.startswith("^") else group
                continue
            escaped = self.class_escape(flags)
            if escaped is not None:
                chars |= escaped
                continue
            range_start = self.pos
            low = self.class_char(start)
            high = low
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.pos += 1
                high = self.class_char(start)
                if high < low:
                    raise self.error("invalid character class range",
                                     self.expr[range_start:self.pos])
            chars |= fold_range(low, high) if flags.fold else set(
                range(low, min(high, 127) + 1))
        self.pos += 1
        return ASCII - frozenset(chars) if negate else frozenset(chars)

    def class_char(self, start: int) -> int:
        c = self.peek()
        if not c:
            raise self.error("missing closing ]", self.expr[start:])
        if c == "\\":
            return self.escape()
        self.pos += 1
        return ord(c)


def _parse_int(text: str) -> tuple[int | None, str]:
    """regexp/syntax ``parseInt``: decimal digits without a leading zero (-1 when huge)."""
    digits = len(text) - len(text.lstrip("0123456789"))
    if digits == 0 or (digits >= 2 and text[0] == "0"):
        return None, text
    value = int(text[:digits]) if digits <= 8 else -1
    return (value if value < 10**8 else -1), text[digits:]


def _repeat_ok(node: Node, budget: int) -> bool:
    """regexp/syntax ``repeatIsValid``: nested counted repeats multiply up to 1000."""
    if node.counted:
        most = node.high if node.high is not None else node.low
        if most == 0:
            return True
        if most > budget:
            return False
        budget //= most
    return all(_repeat_ok(sub, budget) for sub in node.subs)




def parse(expr: str) -> Node:
    """The tree of ``expr``, or :class:`GoRegexpError`; :class:`Unevaluable` for what lamina
    cannot evaluate (including nesting deeper than Python's stack)."""
    try:
        return _Parser(expr).parse()
    except RecursionError:
        raise Unevaluable(f"`{expr}` nests too deeply for lamina to evaluate") from None
