"""Read a rendered Containerfile back the way buildah 1.28 does, to check what it means.

Two independent readers, so a test does not trust lamina's own idea of quoting:

* :func:`instructions` parses with the ``dockerfile`` package (moby/buildkit's Go parser,
  the lineage openshift/imagebuilder's ``dockerfile/parser`` was forked from) and also
  checks imagebuilder's line model (``parser.go``: one instruction per line, a trailing
  backslash joins the next one, ``#`` lines are comments).
* :func:`process_word` is the word evaluation every ENV, LABEL, WORKDIR, USER, COPY and ARG
  argument goes through after parsing (imagebuilder ``shell_parser.go`` ProcessWord, which
  buildah vendors): quotes, backslash escapes, ``$X``/``${X}``/``${X:-y}`` expansion. Written
  from that file's rules, not copied.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import dockerfile


@dataclass(frozen=True)
class Instruction:
    cmd: str
    flags: tuple[str, ...]
    value: tuple[str, ...]
    json: bool


class WordError(ValueError):
    pass


def instructions(text: str) -> list[Instruction]:
    """The instructions of ``text``; asserts imagebuilder would see the same lines."""
    lines = text.split("\n")
    assert lines[-1] == "", "a Containerfile ends with a newline"
    significant = []
    for line in lines[:-1]:
        stripped = line.lstrip()
        assert not re.search(r"\\[ \t]*$", line), f"line continues onto the next: {line!r}"
        assert len(line.encode()) <= 65535, "longer than imagebuilder's bufio.Scanner reads"
        if stripped and not stripped.startswith("#"):
            significant.append(line)
    parsed = dockerfile.parse_string(text)
    assert len(parsed) == len(significant), (len(parsed), len(significant))
    return [Instruction(c.cmd.upper(), tuple(c.flags), tuple(c.value), bool(c.json))
            for c in parsed]


def process_word(word: str, env: dict[str, str] | None = None) -> str:
    """imagebuilder's ProcessWord(word, env)."""
    env = env or {}
    if word.startswith("\ufeff"):  # text/scanner drops a byte-order mark at the start
        word = word[1:]
    out: list[str] = []
    i = 0
    while i < len(word):
        char = word[i]
        if char == "'":
            end = word.find("'", i + 1)
            if end < 0:
                raise WordError("unexpected end of statement while looking for matching '")
            out.append(word[i + 1:end])
            i = end + 1
        elif char == '"':
            i += 1
            while True:
                if i >= len(word):
                    raise WordError('unexpected end while looking for matching "')
                char = word[i]
                if char == '"':
                    i += 1
                    break
                if char == "$":
                    text, i = _dollar(word, i, env)
                    out.append(text)
                    continue
                if char == "\\":
                    if i + 1 >= len(word):
                        i += 1
                        continue
                    if word[i + 1] in '"$\\':
                        out.append(word[i + 1])
                        i += 2
                        continue
                out.append(char)
                i += 1
        elif char == "$":
            text, i = _dollar(word, i, env)
            out.append(text)
        elif char == "\\":
            if i + 1 >= len(word):
                break
            out.append(word[i + 1])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _name(word: str, i: int) -> tuple[str, int]:
    if i < len(word) and word[i].isdigit():
        return word[i], i + 1
    start = i
    while i < len(word) and (word[i].isalnum() or word[i] == "_"):
        i += 1
    return word[start:i], i


def _dollar(word: str, i: int, env: dict[str, str]) -> tuple[str, int]:
    i += 1
    if i < len(word) and word[i] == "{":
        name, i = _name(word, i + 1)
        if i < len(word) and word[i] == "}":
            return env.get(name, ""), i + 1
        if i < len(word) and word[i] == ":":
            modifier = word[i + 1] if i + 1 < len(word) else ""
            end = word.find("}", i + 2)
            if end < 0:
                raise WordError("unexpected end of statement while looking for matching }")
            alternative = process_word(word[i + 2:end], env)
            value = env.get(name, "")
            if modifier == "-":
                return (value or alternative), end + 1
            if modifier == "+":
                return (alternative if value else ""), end + 1
            raise WordError(f"unsupported modifier {modifier!r}")
        raise WordError("missing ':' in substitution")
    name, i = _name(word, i)
    if not name:
        return "$", i
    return env.get(name, ""), i


def pairs(instruction: Instruction) -> dict[str, str]:
    """ENV or LABEL as buildah sets it: each key and value through ProcessWord."""
    values = instruction.value
    assert len(values) % 2 == 0
    return {process_word(values[i]): process_word(values[i + 1])
            for i in range(0, len(values), 2)}


def shell_tokens(run: Instruction) -> list[str]:
    """The words of the ``/bin/sh -c BODY`` a RUN runs, with ``;``, ``||`` and ``&&`` as
    tokens of their own (POSIX sh word rules, as Python's shlex in POSIX mode)."""
    outer = shlex.split(run.value[0])
    assert outer[:2] == ["/bin/sh", "-c"] and len(outer) == 3, outer[:2]
    lexer = shlex.shlex(outer[2], posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    return list(lexer)
