"""Property: whatever names, links and whiteouts a layer carries, nothing outside the target
directory is ever created, changed or removed (refusing the layer is fine)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

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
                "@SENTINEL@/target"] + ["a", "b", "target", "a/b", "b/target"] * 4


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@st.composite
def names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=3))
    prefix = draw(st.sampled_from([""] * 24 + ["./", "/", "@SENTINEL@/"]))
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


@settings(derandomize=True, max_examples=300, deadline=None)
@given(layers_strategy)
def test_nothing_is_ever_written_outside_the_target(layers: list[list[Entry]]) -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        jail = Path(tmp)
        sentinel = jail / "sentinel"
        sentinel.mkdir()
        (sentinel / "target").write_text("precious")
        (sentinel / "a").mkdir()
        blobs = jail / "blobs"
        blobs.mkdir()
        root = jail / "work" / "root"
        root.mkdir(parents=True)
        specs = []
        for number, layer in enumerate(layers):
            fixed = [Entry(e.name.replace("@SENTINEL@", str(sentinel)), e.kind, e.data, e.mode,
                           e.linkname.replace("@SENTINEL@", str(sentinel))) for e in layer]
            blob = blobs / f"layer{number}"
            plain = tar_bytes(fixed)
            blob.write_bytes(gz(plain))
            specs.append(LayerRef(blob, digest(blob.read_bytes()), GZIP_LAYER,
                                  blob.stat().st_size, digest(plain)))
        outside = {p: v for p, v in snapshot(jail).items()
                   if not p.startswith(str(root) + "/")}
        try:
            apply_layers(root, specs)
        except LayerError as exc:
            assert "sha256:" in str(exc)
        after = {p: v for p, v in snapshot(jail).items() if not p.startswith(str(root) + "/")}
        assert after == outside
