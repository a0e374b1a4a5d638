"""Property: a hostile value in any rendered field is refused in one located line, or the
Containerfile has exactly the instructions the recipe implies, each meaning the value.

The Containerfile is read back by a real Dockerfile parser (moby/buildkit's, through the
``dockerfile`` package) with imagebuilder's word evaluation (``containerfile_reader``), and
RUN lines by POSIX shell word rules; nothing here asks lamina how it quoted.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lamina.cli import main
from lamina.pipcache import WHEELS
from tests.core.containerfile_reader import (
    Instruction,
    instructions,
    pairs,
    process_word,
    shell_tokens,
)
from tests.core.hostile_tree import FIELDS, Values, line_of, location, write_tree

HOSTILE = ["a\nb", "a\rb", "x\n", "\n", 'a"b', "a\\b", "\\", "$X", "${X}", "costs $5", "`id`",
           "it's", "a b", " lead", "trail ", "café", "a\tb", "\\n", "FROM x", "RUN y",
           "a\x00b", "\x1b[0m", "\x7f", "\x85", "\u2028", "\ufeffx", "日本", "😀",
           "-r", "--flag", "*", "[a]", "..", "../x", "/etc/passwd", "a/../../b", "x;rm -rf /",
           "$(id)", "'\"", "#c", "k=v", "0644\n", "\ud800", "", " "]
EXPECTED_COMMANDS = ["FROM", "ARG", "ARG", "ADD", "RUN", "RUN", "COPY", "RUN", "ENV",
                     "WORKDIR", "USER", "ENTRYPOINT", "CMD", "LABEL"]


@st.composite
def hostile_value(draw: st.DrawFn) -> str:
    base = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12),
                          st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=4).map(
                              "".join)))
    return draw(st.sampled_from(["", "/", "/opt/"])) + base


def render(root: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-C", str(root), "render", "img"])
    return code, out.getvalue(), err.getvalue()


def _follows(tokens: list[str], head: list[str]) -> list[list[str]]:
    """The token runs that follow each occurrence of ``head`` up to the next ``;``."""
    runs = []
    for i in range(len(tokens) - len(head) + 1):
        if tokens[i:i + len(head)] == head:
            rest = tokens[i + len(head):]
            runs.append(rest[:rest.index(";")] if ";" in rest else rest)
    return runs


def check_meaning(parsed: list[Instruction], v: Values) -> None:
    assert [i.cmd for i in parsed] == EXPECTED_COMMANDS
    by = iter(parsed)
    assert next(by).value == ("scratch",)
    assert next(by).value == ("SOURCE_DATE_EPOCH",)
    assert [process_word(w) for w in next(by).value] == list(v.build_args)
    assert next(by).value == ("rootfs-root-amd64.tar", "/")
    apt = shell_tokens(next(by))
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "$LAMINA_APT_CA"]
    runs = _follows(apt, install)
    assert runs == [[v.package], [v.optional, "||", "echo",
                                  f"lamina: optional package {v.optional} not installed"]]
    pip = shell_tokens(next(by))
    lock = posixpath.normpath(v.lock)
    lock = f"./{lock}" if lock.startswith("-") else lock
    assert _follows(pip, ["grep", "-q", "^[^#[:space:]]"]) == [[lock]]
    assert _follows(pip, ["[", "-x"]) == [[f"{v.prefix}/bin/python", "]", "||", v.python,
                                           "-m", "venv", "--system-site-packages",
                                           "--without-pip", v.prefix]]
    assert _follows(pip, [";", v.python, "-m", "pip", "--python"])[0][:2] == [
        f"{v.prefix}/bin/python", "install"]
    # every pip run (from the wheel cache, downloading into it, or from the index without
    # it: lamina.pipcache) reads exactly the lock, with hashes required
    for head, runs in ((["--find-links", WHEELS, "-r"], 2), (["--dest", WHEELS, "-r"], 1),
                       (["--no-cache-dir", "-r"], 1)):
        assert [run[0] for run in _follows(pip, head)] == [lock] * runs, head
    assert len(_follows(pip, ["install", "--require-hashes", "--break-system-packages"])) == 3
    assert len(_follows(pip, ["download", "--require-hashes"])) == 1
    copy = next(by)
    assert copy.flags == (f"--chmod={v.mode}",)
    dest = v.dest if v.dest.endswith("/") else v.dest + "/"
    assert [process_word(w) for w in copy.value] == [
        f"layers/data/{posixpath.normpath(v.source)}", dest]
    script = shell_tokens(next(by))
    assert _follows(script, ["cd", "/run/lamina-layer", ";"]) == [
        [v.shell, f"./{posixpath.normpath(v.script)}"]]
    assert pairs(next(by)) == {**v.layer_env, **v.env}
    assert process_word(next(by).value[0]) == v.workdir
    assert process_word(next(by).value[0]) == v.user
    entrypoint, cmd = next(by), next(by)
    assert entrypoint.json and list(entrypoint.value) == v.entrypoint
    assert cmd.json and list(cmd.value) == v.cmd
    labels = pairs(next(by))
    assert labels.pop("dev.lamina.key").startswith("sha256:")
    described = {"org.opencontainers.image.description": v.description} if v.description else {}
    assert labels == {**described, **v.labels, "dev.lamina.image": "img",
                      "org.opencontainers.image.title": "img"}


@settings(max_examples=700, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(FIELDS)), value=hostile_value())
@example(field="workdir", value="/a\nRUN touch /pwned")
@example(field="env value", value="costs $5 café\\ \"q\"")
@example(field="files dest", value="/opt/my data $HOME/")
@example(field="pip lock", value="-r x.lock")
@example(field="script script", value="my script's.sh")
@example(field="apt optional", value="x'; touch /pwned; echo '")
def test_hostile_value_is_refused_located_or_means_itself(field: str, value: str) -> None:
    v = Values()
    v.set(field, value)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        files = write_tree(root, v)
        code, out, err = render(root)
        if code == 0:
            check_meaning(instructions(out), v)
            return
        assert code == 2, err
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        file, _ = FIELDS[field]
        line = line_of(files[file], field, v)
        prefix = f"lamina: error: {root.resolve()}/{file}:{line}: {location(field, value)}: "
        assert lines[0].startswith(prefix), (lines[0], prefix)


def test_benign_values_render_as_before() -> None:
    """With plain values the quoting adds nothing: the lines lamina always wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        write_tree(root, Values())
        code, out, err = render(root)
    assert code == 0, err
    assert re.search(r'^ENV IMG_VAR="hello" LAYER_VAR="1"$', out, re.M)
    assert "\nWORKDIR /work\nUSER 1000:1000\n" in out
    assert '\nENTRYPOINT ["/bin/sh", "-c"]\nCMD ["echo", "hi"]\n' in out
    assert "\nCOPY --chmod=0644 layers/data/files /opt/data/\n" in out
    assert "|| echo '\"'\"'lamina: optional package less not installed'\"'\"'" in out
