"""Mutated recipes never produce a traceback: each is accepted or gets the one-line error."""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lamina.cli import main

TINY = Path(__file__).resolve().parent.parent / "trees" / "tiny"
FILES = sorted(str(p.relative_to(TINY)) for p in TINY.rglob("*.yaml"))
TOKENS = ["[", "]", "{", "}", ":", "- ", "null", "123", "-1", "true", "~", "&a", "*a",
          "!!binary x", "\t", "'", '"', "#", "linux/s390x", "scratch", "base", "{arch}",
          "../../etc/passwd", "/abs", "registry.x/y@sha256:" + "0" * 64, "a" * 300, "é",
          "kind: pip", "parent: leaf", "layers: [nope]", "  ", "\x00"]


@st.composite
def mutation(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(FILES))
    lines = (TINY / name).read_text().splitlines()
    kind = draw(st.sampled_from(["replace", "insert", "delete", "duplicate", "value",
                                 "indent"]))
    index = draw(st.integers(0, max(len(lines) - 1, 0)))
    token = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)))
    if kind == "replace" and lines:
        lines[index] = token
    elif kind == "insert":
        lines.insert(index, token)
    elif kind == "delete" and lines:
        del lines[index]
    elif kind == "duplicate" and lines:
        lines.insert(index, lines[index])
    elif kind == "value" and lines and ":" in lines[index]:
        key = lines[index].split(":", 1)[0]
        lines[index] = f"{key}: {token}"
    elif kind == "indent" and lines:
        lines[index] = "  " + lines[index] if draw(st.booleans()) else lines[index].lstrip()
    return name, "\n".join(lines) + "\n"


# Derandomized so CI is repeatable; found cases are pinned below as explicit examples.
@settings(max_examples=600, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(change=mutation())
@example(change=("layers/hello-files/layer.yaml",
                 "kind: files\nsource: " + "a" * 300 + "\ndest: /opt/hello\n"))
def test_mutated_recipe_is_accepted_or_rejected_in_one_line(change: tuple[str, str]) -> None:
    name, text = change
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        shutil.copytree(TINY, root, ignore=shutil.ignore_patterns(".lamina"))
        try:
            (root / name).write_text(text, encoding="utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            (root / name).write_bytes(text.encode("utf-8", errors="replace"))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-C", str(root), "plan", "--json", "--store", str(Path(tmp) / "s")])
        assert code in (0, 2), (code, err.getvalue())
        if code == 2:
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("lamina: error: "), err.getvalue()
            assert "Traceback" not in err.getvalue()
