"""The one way a recipe value is put into a Containerfile or a shell line.

A value either reaches the image exactly as the recipe wrote it, or it is refused with a
located one-line error; it never adds an instruction or changes what one means. There is
one function per rendering context:

* :func:`instruction_arg`: an argument of a Dockerfile instruction (ENV and LABEL values,
  WORKDIR, USER). buildah 1.28 parses Containerfiles with openshift/imagebuilder: the parser
  reads one line per instruction (``dockerfile/parser/parser.go``: a bufio.Scanner, so a
  newline ends the instruction and a line over 64 KiB silently ends the file, and a trailing
  backslash joins the next line), splits ENV/LABEL into words keeping quotes
  (``line_parsers.go`` parseWords), and then every word of ENV, LABEL, WORKDIR, USER, COPY
  and ARG goes through ``shell_parser.go`` ProcessWord, which expands ``$X``/``${X}`` and,
  inside double quotes, honours exactly three escapes: ``\\"``, ``\\$`` and ``\\\\`` (any
  other backslash is kept). So a value is written in double quotes with those three
  escaped; it cannot carry a newline or another control character (a tab is fine).
* :func:`json_args`: the JSON array form (ENTRYPOINT, CMD), decoded by Go's encoding/json
  (``parseJSON``), which takes UTF-8 as it is: ``json.dumps(ensure_ascii=False)``.
  Arguments become argv, so a NUL byte is refused.
* :func:`copy_args`: COPY sources and destination. The plain form splits on whitespace
  before ProcessWord (``parseStringsWhitespaceDelimited``), so a path with a space uses the
  JSON form, whose elements ProcessWord still sees (``evaluator.go`` Resolve): each element
  is therefore escaped like an instruction argument too.
* :func:`shell_word`: a word pasted into a ``RUN /bin/sh -c`` line (package names, paths,
  interpreters): ``shlex.quote``, and one line only.

Names (environment variables, build arguments, label keys, users) are checked with
:func:`is_name` against patterns that must match the WHOLE string; the JSON schemas use
the same patterns (``tests/core/test_quoting.py`` keeps them equal).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

from lamina.errors import RecipeError
from lamina.yamlio import PathKey, YamlDoc

# Names: the whole string must match (fullmatch; never `$`, which accepts a final "\n").
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
LABEL_KEY = r"[A-Za-z0-9][A-Za-z0-9._/-]*"
USER_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?"

# imagebuilder reads the Containerfile with a bufio.Scanner of the default 64 KiB buffer and
# does not check its error: a longer line ends the file there, without a word.
MAX_LINE_BYTES = 65_535

# Characters a bare (unquoted) instruction argument may hold: none is special to parseWords,
# ProcessWord or the whitespace split. Other values are double-quoted.
_BARE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")
_IN_DOUBLE_QUOTES = str.maketrans({'"': '\\"', "$": "\\$", "\\": "\\\\"})


@dataclass(frozen=True)
class Origin:
    """Where a rendered value was written: a recipe file and the path of its key."""

    doc: YamlDoc
    path: PathKey

    def refuse(self, message: str) -> RecipeError:
        return self.doc.error(self.path, message)


def _describe(char: str) -> str:
    if char == "\n":
        return "a newline"
    if char == "\r":
        return "a carriage return"
    if char == "\x00":
        return "a NUL byte"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return "a lone surrogate (not UTF-8 text)"
    return f"the control character U+{ord(char):04X}"


def unwanted_char(value: str, *, allow_tab: bool = True) -> str | None:
    """The first character no one-line context can carry: C0 and C1 control characters
    (Unicode category Cc) and lone surrogates."""
    for char in value:
        if char == "\t" and allow_tab:
            continue
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF:
            return char
    return None


def one_line(value: str, origin: Origin, context: str) -> str:
    """``value`` if it holds no control character; else the located refusal."""
    bad = unwanted_char(value)
    if bad is not None:
        raise origin.refuse(f"contains {_describe(bad)}, which {context} cannot carry; "
                            "expected one line of text")
    return value


def is_name(value: str, pattern: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def name(value: str, pattern: str, origin: Origin, what: str) -> str:
    if not is_name(value, pattern):
        raise origin.refuse(f"{value!r} is not a valid {what} (expected {pattern})")
    return value


def double_quoted(value: str) -> str:
    """``value`` in double quotes, as imagebuilder's ProcessWord gives it back exactly."""
    return '"' + value.translate(_IN_DOUBLE_QUOTES) + '"'


def instruction_arg(value: str, origin: Origin, *, always_quote: bool = False) -> str:
    """An instruction argument that the parser gives back as exactly ``value``."""
    one_line(value, origin, "a Containerfile instruction")
    if not always_quote and _BARE.fullmatch(value):
        return value
    return double_quoted(value)


def key_value(key: str, value: str, key_pattern: str, what: str, key_origin: Origin,
              value_origin: Origin) -> str:
    """One ``KEY="value"`` word of ENV or LABEL."""
    name(key, key_pattern, key_origin, what)
    return f"{key}={instruction_arg(value, value_origin, always_quote=True)}"


def argv(value: str, origin: Origin) -> str:
    """A value that becomes a process argument or environment entry: anything but NUL (and
    lone surrogates, which are no UTF-8 text)."""
    for char in value:
        if char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF:
            raise origin.refuse(f"contains {_describe(char)}, which a command argument "
                                "cannot carry")
    return value


def json_args(values: list[str], origin: Origin) -> str:
    """The JSON array form of an exec command (ENTRYPOINT, CMD)."""
    for index, value in enumerate(values):
        argv(value, Origin(origin.doc, (*origin.path, index)))
    return json.dumps(values, ensure_ascii=False)


def copy_args(sources: list[tuple[str, Origin]], dest: tuple[str, Origin]) -> str:
    """The arguments of COPY/ADD: plain words when they are plain, else the JSON form."""
    words = [*sources, dest]
    for value, origin in words:
        one_line(value, origin, "a COPY instruction")
    if all(_BARE.fullmatch(value) for value, _ in words) and not words[0][0].startswith("-"):
        return " ".join(value for value, _ in words)
    return json.dumps([double_quoted(value) for value, _ in words], ensure_ascii=False)


def shell_word(value: str, origin: Origin) -> str:
    """One word of a ``RUN /bin/sh -c`` line."""
    one_line(value, origin, "a RUN line")
    return shlex.quote(value)


def shell_path(value: str, origin: Origin) -> str:
    """A relative path as a shell word that no command can take for an option."""
    return shell_word(f"./{value}" if value.startswith("-") else value, origin)


def check_line_length(line: str, origin: Origin) -> str:
    size = len(line.encode("utf-8"))
    if size > MAX_LINE_BYTES:
        instruction = line.split(" ", 1)[0]
        raise origin.refuse(f"the {instruction} instruction would be {size} bytes long; "
                            f"buildah's parser reads at most {MAX_LINE_BYTES} bytes per line")
    return line
