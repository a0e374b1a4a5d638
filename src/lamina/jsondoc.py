"""Reading JSON that lamina did not write itself: bounded, one-line errors, shapes checked.

An OCI layout, a registry's cache, a file handed to ``lamina diff``: any of them may be
truncated, not JSON, gigantic, or JSON of the wrong shape (a list where an object belongs).
Each such case must end in one line naming the file (``file:line:column`` for a syntax error,
``file: key.path`` for a shape error) and what was expected, never a traceback. So:

* :func:`read_json` reads at most ``limit`` bytes (a FIFO or device is refused, not waited on)
  and refuses a larger file;
* :func:`parse_json` requires UTF-8 (RFC 8259 §8.1) and turns every parser failure (syntax,
  nesting deep enough to exhaust Python's recursion, a number with more digits than Python
  converts) into the caller's error class;
* lone UTF-16 surrogates from ``\\u`` escapes become U+FFFD, as Go's ``encoding/json`` (the
  unpacker's and the container tools' reader) does, so no later ``.encode()`` can fail;
* the ``expect_*`` helpers check one value's type and say where it is and what it was.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, NoReturn

from lamina.errors import LaminaError, ToolError

MiB = 1 << 20
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
REPLACEMENT = "\ufffd"


def read_bytes(path: Path, *, limit: int, error: type[LaminaError] = ToolError,
               what: str = "file") -> bytes:
    """At most ``limit`` bytes of the regular file ``path``, or ``error``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{path}: the {what} is not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, MiB))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise error(f"{path}: the {what} is larger than {limit} bytes; refusing to read it")
    return b"".join(chunks)


def _scrub(value: Any) -> Any:
    """Replace lone surrogates in every string of ``value`` (iteratively: no recursion)."""
    def fix(text: str) -> str:
        return "".join(REPLACEMENT if 0xD800 <= ord(c) <= 0xDFFF else c for c in text) \
            if any(0xD800 <= ord(c) <= 0xDFFF for c in text) else text

    if isinstance(value, str):
        return fix(value)
    todo: list[Any] = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            for key in list(item):
                child = item.pop(key)
                item[fix(key)] = fix(child) if isinstance(child, str) else child
                if isinstance(child, (dict, list)):
                    todo.append(child)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                if isinstance(child, str):
                    item[index] = fix(child)
                elif isinstance(child, (dict, list)):
                    todo.append(child)
    return value


def parse_json(data: bytes, where: str, error: type[LaminaError] = ToolError, *,
               replace_surrogates: bool = True) -> Any:
    """The JSON value in ``data``; any failure is ``error`` naming ``where``. Lone surrogates
    are kept only in lamina's own files (``replace_surrogates=False``), where they stand for
    the bytes of a file name that is not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{where}: not UTF-8 (byte {exc.start} is not valid UTF-8)") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise error(f"{where}: not usable JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise error(f"{where}: not usable JSON: {exc}") from None
    if replace_surrogates and SURROGATE_ESCAPE.search(text):
        value = _scrub(value)
    return value


def read_json(path: Path, *, limit: int, error: type[LaminaError] = ToolError,
              what: str = "file", replace_surrogates: bool = True) -> Any:
    return parse_json(read_bytes(path, limit=limit, error=error, what=what), str(path), error,
                      replace_surrogates=replace_surrogates)


class ShapeError(ToolError):
    """A JSON document lamina did not write has the wrong shape."""


def kind(value: object) -> str:
    """What a JSON value is, in the words of an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def expect_object(value: object, where: str, key: str,
                  error: type[LaminaError] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise_shape(where, key, "an object", value, error)
    return value


def expect_list(value: object, where: str, key: str,
                  error: type[LaminaError] | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise_shape(where, key, "a list", value, error)
    return value


def expect_str(value: object, where: str, key: str,
                  error: type[LaminaError] | None = None) -> str:
    if not isinstance(value, str):
        raise_shape(where, key, "a string", value, error)
    return value


def expect_int(value: object, where: str, key: str,
                  error: type[LaminaError] | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise_shape(where, key, "an integer", value, error)
    return value


def raise_shape(where: str, key: str, expected: str, value: object,
                error: type[LaminaError] | None = None) -> NoReturn:
    raise (error or ShapeError)(f"{where}: {key}: expected {expected}, got {kind(value)}")
