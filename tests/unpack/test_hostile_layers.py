"""Property: whatever names, links and whiteouts a layer carries, nothing outside the target
directory is ever created, changed or removed (refusing the layer is fine).

Two sentinels: one beside the target inside the example's temporary directory, and one
outside it (a unique directory directly under the system temporary directory, made once for
the module), which entries and links name absolutely and through ``../`` chains from the
target. Absolute names (``/a``, ``/evil``...) must not appear at the filesystem root either."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.unpack.layers import LayerError, LayerRef, apply_layers
from tests.unpack.oci import GZIP_LAYER, Entry, gz, tar_bytes
from tests.unpack.test_security import snapshot

# repeated items weigh more: most entries must get past the name checks so that links,
# replacements and whiteouts really happen
COMPONENTS = ["a", "a", "a", "b", "b", "b", "evil", "evil", "evil", "up", "up", "target",
              "target", "sentinel", ".wh.a", ".wh.evil", ".wh..wh..opq", ".", "", "..",
              ".wh...", ".cvmfscatalog"] + ["a", "b", "evil", "target"] * 6 + [
                  ".wh.a", ".wh.b", ".wh.target", ".wh..wh..opq"] * 2
LINK_TARGETS = ["/", "..", "../..", "../../sentinel", "../../../sentinel/target", "a", "evil",
                "a/../..", "/tmp", ".", "target", "evil/target", "@SENTINEL@",
                "@SENTINEL@/target", "@OUTSIDE@", "@OUTSIDE@/target", "@OUTSIDE@/a",
                "@OUTSIDE_REL@", "@OUTSIDE_REL@/target", "@OUTSIDE_REL@/a"] + [
                    "a", "b", "target", "a/b", "b/target"] * 4


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@st.composite
def names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3))
    prefix = draw(st.sampled_from([""] * 24 + ["./", "/", "@SENTINEL@/", "@OUTSIDE@/",
                                                "@OUTSIDE_REL@/", "@OUTSIDE_REL@/a/"]))
    return prefix + "/".join(parts)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.sampled_from(["file", "file", "dir", "dir", "symlink", "symlink", "hardlink",
                                 "hardlink", "fifo"]))
    link = draw(st.sampled_from(LINK_TARGETS)) if kind in ("symlink", "hardlink") else ""
    mode = draw(st.sampled_from([0o644, 0o755, 0o000, 0o4755, 0o555]))
    return Entry(draw(names()), kind, b"payload" if kind == "file" else b"", mode, link)


layers_strategy = st.lists(st.lists(entries(), min_size=1, max_size=8), min_size=1,
                           max_size=3)


def plant(sentinel: Path) -> None:
    sentinel.mkdir()
    (sentinel / "target").write_text("precious")
    (sentinel / "a").mkdir()


@pytest.fixture(scope="module")
def outside() -> Iterator[Path]:
    """A sentinel outside every example's temporary directory; on a shared machine each
    run gets its own, removed afterwards."""
    holder = Path(tempfile.mkdtemp(prefix="lamina-hostile-outside-"))
    plant(holder / "sentinel")
    yield holder / "sentinel"
    shutil.rmtree(holder, ignore_errors=True)


# the first components an absolute entry name can have
ROOT_NAMES = sorted({Path("/", c) for c in COMPONENTS if c not in ("", ".", "..")})


@settings(derandomize=True, max_examples=300, deadline=None)
@given(layers=layers_strategy)
def test_nothing_is_ever_written_outside_the_target(outside: Path,
                                                    layers: list[list[Entry]]) -> None:
    outside_before = snapshot(outside)
    assert len(outside_before) == 2
    at_root = {p for p in ROOT_NAMES if os.path.lexists(p)}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        jail = Path(tmp)
        sentinel = jail / "sentinel"
        plant(sentinel)
        blobs = jail / "blobs"
        blobs.mkdir()
        root = jail / "work" / "root"
        root.mkdir(parents=True)
        # ../../../<holder>/sentinel: from the target up to / and down to the outside one
        relative = os.path.relpath(outside, root)
        assert relative.startswith("../../../")

        def placed(text: str) -> str:
            return (text.replace("@SENTINEL@", str(sentinel)).replace("@OUTSIDE@", str(outside))
                    .replace("@OUTSIDE_REL@", relative))

        specs = []
        for number, layer in enumerate(layers):
            fixed = [Entry(placed(e.name), e.kind, e.data, e.mode, placed(e.linkname))
                     for e in layer]
            blob = blobs / f"layer{number}"
            plain = tar_bytes(fixed)
            blob.write_bytes(gz(plain))
            specs.append(LayerRef(blob, digest(blob.read_bytes()), GZIP_LAYER,
                                  blob.stat().st_size, digest(plain)))
        outside_here = {p: v for p, v in snapshot(jail).items()
                        if not p.startswith(str(root) + "/")}
        try:
            apply_layers(root, specs)
        except LayerError as exc:
            assert "sha256:" in str(exc)
        after = {p: v for p, v in snapshot(jail).items() if not p.startswith(str(root) + "/")}
        assert after == outside_here
    assert snapshot(outside) == outside_before
    assert {p for p in ROOT_NAMES if os.path.lexists(p)} == at_root
