"""Layers that try to write outside the image root are refused, and nothing outside changes."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.conftest import CliResult
from tests.unpack.oci import (
    INDEX,
    MANIFEST,
    Entry,
    Layout,
    d,
    f,
    gz,
    hard,
    single,
    sym,
    tar_bytes,
)

Lamina = Callable[..., CliResult]


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    """Every path under ``root`` with its type and content (or link target)."""
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            if path.is_symlink():
                out[str(path)] = (st.st_mode, os.readlink(path))
            elif path.is_file():
                out[str(path)] = (st.st_mode, path.read_bytes())
            else:
                out[str(path)] = (st.st_mode, b"")
    return out


@pytest.fixture
def sentinel(tmp_path: Path) -> Path:
    """A directory beside the output that no layer may touch."""
    root = tmp_path / "sentinel"
    root.mkdir()
    (root / "target").write_text("precious\n")
    return root


def refused(lamina: Lamina, tmp_path: Path, sentinel: Path, layers: list[bytes],
            entry: str) -> str:
    layout = tmp_path / "layout"
    single(layout, layers)
    before = snapshot(sentinel)
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout}:test", str(out))
    assert result.code == 1, result.out
    assert snapshot(sentinel) == before, "something outside the image root changed"
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    digest = "sha256:" + hashlib.sha256(layers[-1]).hexdigest()  # the offending layer
    assert digest in result.err, result.err
    assert repr(entry) in result.err, result.err
    assert not list(out.glob(".flat/*/*")), "a refused unpack leaves no flat behind"
    assert not list(out.glob("localhost/*")), "no public symlink for a refused image"
    return result.err


def test_absolute_names_are_refused(lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    name = str(sentinel / "absolute")
    err = refused(lamina, tmp_path, sentinel, [gz(tar_bytes([f("ok"), f(name, "x")]))], name)
    assert "absolute path" in err
    assert not (sentinel / "absolute").exists()


def test_dotdot_names_are_refused(lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    # from out/.flat/cc/<c>/ four levels up is tmp_path
    name = "../../../../sentinel/escaped"
    err = refused(lamina, tmp_path, sentinel, [gz(tar_bytes([f(name, "x")]))], name)
    assert "'..' component" in err


def test_writing_through_a_symlink_is_refused(lamina: Lamina, tmp_path: Path,
                                              sentinel: Path) -> None:
    layer = gz(tar_bytes([sym("evil", str(sentinel)), f("evil/file", "x")]))
    err = refused(lamina, tmp_path, sentinel, [layer], "evil/file")
    assert "parent 'evil' is a symlink" in err


def test_writing_through_a_relative_symlink_of_a_lower_layer_is_refused(
        lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    lower = gz(tar_bytes([d("a"), sym("a/up", "../../../../../sentinel")]))
    upper = gz(tar_bytes([f("a/up/target", "overwritten")]))
    refused(lamina, tmp_path, sentinel, [lower, upper], "a/up/target")


def test_hardlink_to_outside_is_refused(lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    layer = gz(tar_bytes([hard("link", "../../outside")]))
    err = refused(lamina, tmp_path, sentinel, [layer], "../../outside")
    assert "'..' component" in err


def test_hardlink_through_a_symlink_is_refused(lamina: Lamina, tmp_path: Path,
                                               sentinel: Path) -> None:
    layer = gz(tar_bytes([sym("evil", str(sentinel)), hard("stolen", "evil/target")]))
    refused(lamina, tmp_path, sentinel, [layer], "stolen -> evil/target")


def test_a_file_over_a_symlink_replaces_the_symlink(lamina: Lamina, tmp_path: Path,
                                                    sentinel: Path) -> None:
    """Not refused: the layer replaces the link itself, and the outside file is untouched."""
    lower = gz(tar_bytes([sym("victim", str(sentinel / "target")),
                          sym("dir", str(sentinel))]))
    upper = gz(tar_bytes([f("victim", "mine"), d("dir"), f("dir/target", "mine too"),
                          hard("linked", "victim")]))
    layout = tmp_path / "layout"
    single(layout, [lower, upper])
    before = snapshot(sentinel)
    result = lamina("unpack", f"oci:{layout}:test", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert snapshot(sentinel) == before
    flat = tmp_path / "out/localhost/test:latest"
    assert not (flat / "victim").is_symlink() and (flat / "victim").read_text() == "mine"
    assert (flat / "dir/target").read_text() == "mine too"


def test_whiteouts_never_reach_outside(lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    lower = gz(tar_bytes([sym("evil", str(sentinel))]))
    upper = gz(tar_bytes([f("evil/.wh.target"), Entry("evil/.wh..wh..opq")]))
    layout = tmp_path / "layout"
    single(layout, [lower, upper])
    before = snapshot(sentinel)
    result = lamina("unpack", f"oci:{layout}:test", str(tmp_path / "out"))
    assert snapshot(sentinel) == before
    assert result.code == 0, result.err  # whiteouts below a symlink hide nothing: no-op


def test_whiteout_of_dotdot_is_refused(lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    layer = gz(tar_bytes([d("a"), f("a/.wh..."), f("ok")]))
    err = refused(lamina, tmp_path, sentinel, [layer], "a/.wh...")
    assert "names '..'" in err


def test_nul_bytes_and_absurd_times_give_a_clear_error_or_are_tolerated(
        lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    far = Entry("far-future", "file", b"t", 0o644, mtime=10**13)
    layout = tmp_path / "ok-layout"
    single(layout, [gz(tar_bytes([far]))])
    assert lamina("unpack", f"oci:{layout}:test", str(tmp_path / "ok")).code == 0

    name = "a\x00b" + "c" * 120  # long enough for a PAX path record, which keeps the NUL
    err = refused(lamina, tmp_path, sentinel, [gz(tar_bytes([f(name, "x")]))], name)
    assert "NUL byte" in err


def test_hostile_digests_and_architectures_never_become_paths(
        lamina: Lamina, tmp_path: Path, sentinel: Path) -> None:
    """Image documents name directories (.flat/<cc>/<config hex>, .multiarch/<arch>): a
    config digest or architecture that is not a plain name is refused."""
    layout = Layout(tmp_path / "layout")
    good_layer = gz(tar_bytes([f("x", "x")]))
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": "sha256:../../../../sentinel", "size": 2},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layout.blob(good_layer), "size": len(good_layer)}]}
    raw = json.dumps(manifest).encode()
    layout.tag("bad-config", layout.blob(raw), len(raw))
    digest, size, _ = layout.image([good_layer], arch="../../../../sentinel")
    index, isize = layout.index([(digest, size, {"os": "linux",
                                                 "architecture": "../../../sentinel"})])
    layout.tag("bad-arch", index, isize, INDEX)
    before = snapshot(sentinel)
    for ref, what in (("bad-config", "invalid digest"), ("bad-arch", "invalid architecture")):
        result = lamina("unpack", f"oci:{layout.root}:{ref}", str(tmp_path / "out"))
        assert result.code == 1, result.out
        assert what in result.err and "Traceback" not in result.err
    assert snapshot(sentinel) == before
    assert not list((tmp_path / "out").glob(".flat/*/*"))
