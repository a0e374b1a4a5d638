"""Output that never fails on a name that is not UTF-8.

Linux file names are bytes. Python hands lamina a name that is not valid UTF-8 (from the
command line, a recipe tree or a layer) as a ``str`` with lone surrogates (PEP 383's
``surrogateescape``), and a JSON document can carry lone surrogates through ``\\u`` escapes.
Writing either to a strict UTF-8 stream raises ``UnicodeEncodeError`` in the middle of a
message, which is how such a name used to end in a traceback. :func:`install` gives stdout and
stderr the ``lamina-escape`` error handler: a byte that Python smuggled in as a surrogate is
printed as ``\\xNN`` (the byte the name really has), any other character the stream cannot
encode as ``\\uNNNN``. Nothing else changes: valid text is written as before.
"""

from __future__ import annotations

import codecs
import contextlib
import sys

HANDLER = "lamina-escape"


def _escape(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = []
    for char in error.object[error.start:error.end]:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape's stand-in for byte code - 0xDC00
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out), error.end


def _register() -> None:
    try:
        codecs.lookup_error(HANDLER)
    except LookupError:
        codecs.register_error(HANDLER, _escape)


def install() -> None:
    """Make stdout and stderr escape what they cannot encode instead of raising."""
    _register()
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        with contextlib.suppress(ValueError, OSError):  # a closed or exotic stream: as it is
            reconfigure(errors=HANDLER)


def display(text: str) -> str:
    """``text`` as it will be printed: valid UTF-8, undecodable bytes as ``\\xNN``."""
    _register()
    return text.encode("utf-8", HANDLER).decode("utf-8")
