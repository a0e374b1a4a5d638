"""OCI layer semantics, checked on crafted layers through ``lamina unpack oci:PATH:REF``."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tests.core.conftest import CliResult
from tests.unpack.oci import (
    EMPTY_LAYER,
    EMPTY_LAYER_DIGEST,
    Entry,
    Layout,
    d,
    f,
    gz,
    hard,
    sha256,
    single,
    sym,
    tar_bytes,
)

Lamina = Callable[..., CliResult]


def unpack(lamina: Lamina, tmp_path: Path, layers: list[bytes], **kwargs: object
           ) -> tuple[Path, dict[str, object]]:
    """Unpack a one-image layout; return the flat rootfs and the command's JSON."""
    layout = tmp_path / "layout"
    config = single(layout, layers, **kwargs)  # type: ignore[arg-type]
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout}:test", str(out), "--json")
    assert result.code == 0, result.err
    data = result.json()
    hexpart = config.split(":")[1]
    flat = out / ".flat" / hexpart[:2] / hexpart
    assert data["flats"][0]["path"] == str(flat)
    return flat, data


def names(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if not str(p.relative_to(root)).startswith(".singularity.d")}


def test_whiteout_of_a_directory_removes_its_subtree(lamina: Lamina, tmp_path: Path) -> None:
    base = gz(tar_bytes([d("a"), d("a/b"), f("a/b/deep", "x"), f("a/sibling", "s"),
                         f("keep", "k")]))
    upper = gz(tar_bytes([f(".wh.a"), f(".wh.missing")]))
    flat, data = unpack(lamina, tmp_path, [base, upper])
    assert not os.path.lexists(flat / "a")
    assert (flat / "keep").read_text() == "k"
    assert not any(".wh." in n for n in names(flat))
    assert data["flats"][0]["summary"]["whiteouts"] == 2


def test_opaque_directory_hides_lower_children_and_keeps_recreated_ones(
        lamina: Lamina, tmp_path: Path) -> None:
    # the spec's example, with the marker written *after* the new children
    base = gz(tar_bytes([d("a"), d("a/b"), d("a/b/c"), f("a/b/c/bar", "old"), f("a/top", "t"),
                         d("z"), f("z/untouched", "u")]))
    upper = gz(tar_bytes([d("a"), d("a/b"), d("a/b/c"), f("a/b/c/foo", "new"),
                          f("a/.wh..wh..opq")]))
    flat, data = unpack(lamina, tmp_path, [base, upper])
    assert (flat / "a/b/c/foo").read_text() == "new"
    assert not (flat / "a/b/c/bar").exists()
    assert not (flat / "a/top").exists()
    assert (flat / "z/untouched").read_text() == "u"
    assert not any(".wh." in n for n in names(flat))
    assert data["flats"][0]["summary"]["opaque_dirs"] == 1


def test_whiteout_applies_only_to_lower_layers(lamina: Lamina, tmp_path: Path) -> None:
    base = gz(tar_bytes([f("again", "lower")]))
    upper = gz(tar_bytes([f("again", "upper"), f(".wh.again")]))
    flat, _ = unpack(lamina, tmp_path, [base, upper])
    assert (flat / "again").read_text() == "upper"


def test_file_and_directory_replace_each_other(lamina: Lamina, tmp_path: Path) -> None:
    base = gz(tar_bytes([f("x", "file"), d("y"), d("y/sub"), f("y/sub/z", "z"),
                         sym("s", "x")]))
    upper = gz(tar_bytes([d("x", 0o750), f("x/inner", "in"), f("y", "now a file", 0o600),
                          d("s")]))
    flat, _ = unpack(lamina, tmp_path, [base, upper])
    assert stat.S_ISDIR(os.lstat(flat / "x").st_mode)
    assert stat.S_IMODE(os.lstat(flat / "x").st_mode) == 0o750
    assert (flat / "x/inner").read_text() == "in"
    assert (flat / "y").read_text() == "now a file"
    assert stat.S_IMODE(os.lstat(flat / "y").st_mode) == 0o600
    assert stat.S_ISDIR(os.lstat(flat / "s").st_mode)


def test_hardlinks_resolve_within_their_layer_only_as_ducc_ingests_them(
        lamina: Lamina, tmp_path: Path) -> None:
    """DUCC ingests each layer alone with --tolerate-missing-hardlinks (ducc/lib/image.go
    IngestIntoCVMFSWithLogger) and resolves a layer's hardlinks after its last entry
    (cvmfs/sync_union_tarball.cc PostUpload): a target of the same layer, even later in the
    tar, gives a link; a target of a lower layer, or none, an empty file with the link's own
    mode (SyncItemDummyFile), which the flat shows over the lower file."""
    base = gz(tar_bytes([f("lower-target", "from below")]))
    upper = gz(tar_bytes([hard("early", "target"), f("target", "same inode"),
                          hard("link", "target"),
                          Entry("to-lower", "hardlink", linkname="lower-target", mode=0o600),
                          Entry("cache/pkg", "hardlink", linkname="var/cache/gone", mode=0o640)]))
    flat, data = unpack(lamina, tmp_path, [base, upper])
    assert os.lstat(flat / "link").st_ino == os.lstat(flat / "target").st_ino
    assert os.lstat(flat / "early").st_ino == os.lstat(flat / "target").st_ino
    assert (flat / "lower-target").read_text() == "from below"
    cross = flat / "to-lower"
    assert cross.is_file() and cross.read_bytes() == b""
    assert stat.S_IMODE(os.lstat(cross).st_mode) == 0o600
    dangling = flat / "cache/pkg"
    assert dangling.is_file() and dangling.read_bytes() == b""
    assert stat.S_IMODE(os.lstat(dangling).st_mode) == 0o640
    summary = data["flats"][0]["summary"]
    assert summary["hardlinks"] == 2
    assert summary["cross_layer_hardlinks"] == 1 and summary["dangling_hardlinks"] == 1
    assert summary["notes"]["cross_layer_hardlinks"] == ["to-lower -> lower-target"]
    assert summary["notes"]["dangling_hardlinks"] == ["cache/pkg -> var/cache/gone"]


def test_human_output_names_the_files_cvmfs_shows_empty(lamina: Lamina, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single(layout, [gz(tar_bytes([f("usr/lib/libx.so", "elf")])),
                    gz(tar_bytes([hard("usr/lib/libx.so.1", "usr/lib/libx.so"),
                                  hard("lost", "nowhere")]))])
    result = lamina("unpack", f"oci:{layout}:test", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert ("note (amd64): 1 hardlinks to files of lower layers: empty files on CVMFS (DUCC "
            "ingests each layer alone): usr/lib/libx.so.1 -> usr/lib/libx.so") in result.out
    assert ("note (amd64): 1 hardlinks to missing files made empty files (as DUCC, "
            "cvmfs#4286): lost -> nowhere") in result.out


def test_well_known_empty_layer(lamina: Lamina, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "layout")
    assert layout.blob(EMPTY_LAYER) == EMPTY_LAYER_DIGEST
    flat, data = unpack(lamina, tmp_path, [gz(tar_bytes([f("hello", "hi")])), EMPTY_LAYER,
                                           EMPTY_LAYER])
    assert (flat / "hello").read_text() == "hi"
    summary = data["flats"][0]["summary"]
    assert summary["files"] == 1


def test_device_nodes_and_fifos_are_skipped_with_a_note(lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([d("dev"), Entry("dev/null", "chr", mode=0o666),
                          Entry("dev/sda", "blk", mode=0o660), Entry("run/pipe", "fifo"),
                          f("etc/ok", "ok")]))
    flat, data = unpack(lamina, tmp_path, [layer])
    assert not os.path.lexists(flat / "dev/null")
    assert not os.path.lexists(flat / "dev/sda")
    assert not os.path.lexists(flat / "run/pipe")
    assert (flat / "etc/ok").read_text() == "ok"
    summary = data["flats"][0]["summary"]
    assert summary["skipped_special"] == 3
    assert summary["notes"]["skipped_special"] == ["dev/null (char device)",
                                                   "dev/sda (block device)", "run/pipe (fifo)"]


def test_setuid_bits_are_kept_and_counted(lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([d("usr"), d("usr/bin"), f("usr/bin/sudo", "#!", 0o4755),
                          d("tmp", 0o1777)]))
    flat, data = unpack(lamina, tmp_path, [layer])
    assert stat.S_IMODE(os.lstat(flat / "usr/bin/sudo").st_mode) == 0o4755
    assert stat.S_IMODE(os.lstat(flat / "tmp").st_mode) == 0o1777
    assert data["flats"][0]["summary"]["setid_files"] == 1


def test_cvmfs_control_files_are_dropped(lamina: Lamina, tmp_path: Path) -> None:
    layer = gz(tar_bytes([d("opt"), f("opt/.cvmfscatalog"), f(".cvmfsautocatalog"),
                          f("opt/.cvmfsdirtab", "/*"), f("opt/real", "r")]))
    flat, data = unpack(lamina, tmp_path, [layer])
    assert {n for n in names(flat) if n.startswith("opt")} == {"opt", "opt/real"}
    assert not (flat / ".cvmfsautocatalog").exists()
    assert data["flats"][0]["summary"]["dropped_cvmfs"] == 3


def test_read_only_directory_of_a_lower_layer_still_receives_upper_files(
        lamina: Lamina, tmp_path: Path) -> None:
    base = gz(tar_bytes([d("ro", 0o555), f("ro/a", "a", 0o444)]))
    upper = gz(tar_bytes([f("ro/b", "b")]))
    flat, _ = unpack(lamina, tmp_path, [base, upper])
    assert (flat / "ro/b").read_text() == "b"
    assert stat.S_IMODE(os.lstat(flat / "ro").st_mode) == 0o555


def test_uncompressed_and_zstd_layers_are_refused_in_one_line_naming_the_layer(
        lamina: Lamina, tmp_path: Path) -> None:
    """DUCC reads every layer through gzip.NewReader (ducc/lib/image.go
    downloadLayerWithLogger): neither an uncompressed nor a zstd layer is ingested."""
    plain = tar_bytes([f("plain", "p")])
    layout = tmp_path / "plain-layout"
    single(layout, [gz(tar_bytes([f("base", "b")])), plain],
           media="application/vnd.oci.image.layer.v1.tar")
    refused = lamina("unpack", f"oci:{layout}:test", str(tmp_path / "plain-out"))
    assert refused.code == 1
    assert refused.err.strip().splitlines() == [
        f"lamina: error: layer {sha256(plain)} (2 of 2) is not compressed "
        "(application/vnd.oci.image.layer.v1.tar); unpacked.cern.ch only ingests gzip layers "
        "(DUCC reads them with gzip.NewReader): push with --compression-format gzip"]
    assert not list((tmp_path / "plain-out").glob(".flat/*/*"))

    zstd = b"\x28\xb5\x2f\xfd" + b"\0" * 32
    layout = tmp_path / "zstd-layout"
    single(layout, [zstd], media="application/vnd.oci.image.layer.v1.tar+zstd")
    out = tmp_path / "zstd-out"
    result = lamina("unpack", f"oci:{layout}:test", str(out))
    assert result.code == 1
    assert "zstd-compressed" in result.err and "gzip" in result.err
    assert "Traceback" not in result.err
    assert not list(out.glob(".flat/*/*")), "a failed unpack leaves no (half) flat"


def test_flat_is_reused_and_public_symlink_is_relative(lamina: Lamina, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    config = single(layout, [gz(tar_bytes([f("hello", "hi")]))])
    out = tmp_path / "out"
    name = "127.0.0.1:5000/group/project/image:v1"
    first = lamina("unpack", f"oci:{layout}:test", str(out), "--name", name, "--json")
    assert first.code == 0, first.err
    assert first.json()["flats"][0]["reused"] is False
    public = out / "127.0.0.1:5000/group/project/image:v1"
    hexpart = config.split(":")[1]
    # one ../ for the registry plus one per '/' in the repository
    assert os.readlink(public) == f"../../../.flat/{hexpart[:2]}/{hexpart}"
    assert (public / "hello").read_text() == "hi"
    record = json.loads((out / ".lamina/flats" / f"{hexpart}.json").read_text())
    assert record["config_digest"] == config

    (public / "hello").write_text("changed locally")  # a reused flat is not rebuilt
    again = lamina("unpack", f"oci:{layout}:test", str(out), "--name", name, "--json")
    assert again.json()["flats"][0]["reused"] is True
    assert (public / "hello").read_text() == "changed locally"

    # a flat without its record (a crash between rename and record) is rebuilt
    (out / ".lamina/flats" / f"{hexpart}.json").unlink()
    rebuilt = lamina("unpack", f"oci:{layout}:test", str(out), "--name", name, "--json")
    assert rebuilt.json()["flats"][0]["reused"] is False
    assert (public / "hello").read_text() == "hi"
    assert sorted(p.name for p in (out / ".flat" / hexpart[:2]).iterdir()) == [hexpart]


def test_a_real_directory_at_the_public_path_is_not_replaced(
        lamina: Lamina, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    single(layout, [gz(tar_bytes([f("hello", "hi")]))])
    out = tmp_path / "out"
    (out / "localhost/test:latest").mkdir(parents=True)
    result = lamina("unpack", f"oci:{layout}:test", str(out))
    assert result.code == 2
    assert "exists and is not a symlink" in result.err


def test_each_layer_blob_is_read_and_inflated_once(lamina: Lamina, tmp_path: Path) -> None:
    """Pass two reads the spool pass one verified, not the blob: the compressed bytes read
    are the layers' sizes, once each."""
    layers = [gz(tar_bytes([f(f"file{i}", "x" * 5000) for i in range(50)])),
              gz(tar_bytes([f(".wh.file3"), f("upper", "u")]))]
    flat, data = unpack(lamina, tmp_path, layers)
    assert not (flat / "file3").exists() and (flat / "upper").read_text() == "u"
    assert data["flats"][0]["summary"]["blob_bytes_read"] == sum(len(b) for b in layers)
    assert not list(flat.parent.glob(".spool-*"))  # the spool has no name, leaves nothing
