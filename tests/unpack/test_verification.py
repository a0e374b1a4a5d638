"""Layers and configs are verified against their digests and the config's rootfs.diff_ids
(image-spec config.md, "Layer DiffID") before a flat is written or reused, and one image can
never reuse or replace another's flat through a shared config digest."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.core.conftest import CliResult
from tests.unpack.oci import (
    CONFIG,
    GZIP_LAYER,
    RawLayout,
    config_doc,
    desc,
    diff_id,
    f,
    gz,
    sha256,
    tar_bytes,
)

Lamina = Callable[..., CliResult]
BASE = gz(tar_bytes([f("base", "b")]))
APP = gz(tar_bytes([f("app", "a")]))
EVIL = gz(tar_bytes([f("app", "evil")]))


def one_line(result: CliResult) -> str:
    assert "Traceback" not in result.err and "internal error" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0].removeprefix("lamina: error: ")


def image(layout: RawLayout, layers: list[bytes], diff_ids: list[str] | None = None,
          ref: str = "test") -> dict[str, Any]:
    config, descs = layout.image_parts(layers, diff_ids)
    manifest = layout.manifest(config, descs)
    layout.tag_desc(manifest, ref)
    return config


def blob(layout: RawLayout, data: bytes) -> Path:
    return layout.root / "blobs" / "sha256" / sha256(data).split(":")[1]


def no_flat(out: Path) -> None:
    assert not list(out.glob(".flat/*/*")), "nothing of a refused image is kept"
    assert not list(out.glob("localhost/*")), "and no public path points at it"


def test_a_layer_whose_bytes_do_not_match_its_digest(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    image(layout, [BASE, APP])
    tampered = bytearray(APP)
    tampered[-9] ^= 0xFF  # same size, other bytes (the gzip trailer's CRC)
    blob(layout, APP).write_bytes(bytes(tampered))
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out))
    assert result.code == 1
    assert one_line(result) == (
        f"layer {sha256(APP)} (2 of 2): the blob does not match its digest (its content "
        f"hashes to {sha256(bytes(tampered))}); the layout is corrupt or was tampered with")
    no_flat(out)


def test_a_layer_of_the_wrong_size_is_refused_before_it_is_read(
        lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    image(layout, [APP])
    blob(layout, APP).write_bytes(APP + b"\0" * 10)
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out))
    assert result.code == 1
    assert one_line(result) == (
        f"layer {sha256(APP)} (1 of 1): the blob has {len(APP) + 10} bytes but the manifest "
        f"says {len(APP)}; the layout is corrupt or was tampered with")
    no_flat(out)


def test_a_layer_whose_diff_id_does_not_match_the_config(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    image(layout, [BASE, EVIL], diff_ids=[diff_id(BASE), diff_id(APP)])
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out))
    assert result.code == 1
    message = one_line(result)
    assert message.startswith(f"layer {sha256(EVIL)} (2 of 2): its uncompressed content (")
    assert message.endswith(f") hashes to {diff_id(EVIL)}, not to the config's rootfs.diff_ids "
                            f"entry {diff_id(APP)}; refusing an image whose layers do not "
                            "match its config")
    no_flat(out)


def test_a_config_that_does_not_match_its_digest(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    config = image(layout, [APP])
    path = layout.root / "blobs" / "sha256" / config["digest"].split(":")[1]
    original = path.read_bytes()
    forged = original.replace(b'"amd64"', b'"arm64"')
    assert len(forged) == len(original)
    path.write_bytes(forged)
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out))
    assert result.code == 1
    assert one_line(result) == (
        f"config {config['digest']} does not match its digest (the content hashes to "
        f"{sha256(forged)}); the layout is corrupt or was tampered with")
    no_flat(out)


def test_more_layers_than_diff_ids(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    config = image(layout, [BASE, APP], diff_ids=[diff_id(BASE)])
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:test", str(out))
    assert result.code == 1
    message = one_line(result)
    assert message.startswith("manifest sha256:")
    assert message.endswith(f" lists 2 layers but its config {config['digest']} has 1 "
                            "rootfs.diff_ids; refusing an image whose layers do not match "
                            "its config")
    no_flat(out)


def flat_of(out: Path, config: dict[str, Any]) -> Path:
    hexpart = config["digest"].split(":")[1]
    return out / ".flat" / hexpart[:2] / hexpart


def test_an_image_sharing_a_config_digest_cannot_reuse_or_replace_a_flat(
        lamina: Lamina, tmp_path: Path) -> None:
    """Image B names image A's config (same digest, so same diff_ids) with other layers."""
    layout = RawLayout(tmp_path / "layout")
    config = image(layout, [BASE, APP], ref="a")
    evil_layers = [desc(layout.blob(b), len(b), GZIP_LAYER) for b in (BASE, EVIL)]
    layout.write_index({"schemaVersion": 2, "manifests": [
        {**layout.manifest(config, [desc(layout.blob(b), len(b), GZIP_LAYER)
                                    for b in (BASE, APP)]),
         "annotations": {"org.opencontainers.image.ref.name": "a"}},
        {**layout.manifest(config, evil_layers),
         "annotations": {"org.opencontainers.image.ref.name": "b"}}]})
    out = tmp_path / "out"
    first = lamina("unpack", f"oci:{layout.root}:a", str(out), "--json")
    assert first.code == 0, first.err
    flat = flat_of(out, config)
    record = out / ".lamina/flats" / f"{config['digest'].split(':')[1]}.json"
    saved = record.read_bytes()
    assert json.loads(saved)["diff_ids"] == [diff_id(BASE), diff_id(APP)]

    second = lamina("unpack", f"oci:{layout.root}:b", str(out), "--json")
    assert second.code == 1
    assert f"layer {sha256(EVIL)} (2 of 2): its uncompressed content" in one_line(second)
    assert (flat / "app").read_text() == "a", "the first image's flat is untouched"
    assert record.read_bytes() == saved
    assert not list(flat.parent.glob(".tmp-*"))

    again = lamina("unpack", f"oci:{layout.root}:a", str(out), "--json")
    assert again.json()["flats"][0]["reused"] is True


def test_recompressed_layers_with_the_same_diff_ids_rebuild_rather_than_reuse(
        lamina: Lamina, tmp_path: Path) -> None:
    """Same config, same DiffIDs, other blobs (gzip level): the record names other layers, so
    the flat is rebuilt from the verified blobs rather than taken on trust."""
    layout = RawLayout(tmp_path / "layout")
    config = image(layout, [APP], ref="a")
    recompressed = gzip.compress(gzip.decompress(APP), compresslevel=1, mtime=1)
    assert recompressed != APP and diff_id(recompressed) == diff_id(APP)
    layout.write_index({"schemaVersion": 2, "manifests": [
        {**layout.manifest(config, [desc(layout.blob(APP), len(APP), GZIP_LAYER)]),
         "annotations": {"org.opencontainers.image.ref.name": "a"}},
        {**layout.manifest(config, [desc(layout.blob(recompressed), len(recompressed),
                                         GZIP_LAYER)]),
         "annotations": {"org.opencontainers.image.ref.name": "b"}}]})
    out = tmp_path / "out"
    assert lamina("unpack", f"oci:{layout.root}:a", str(out)).code == 0
    other = lamina("unpack", f"oci:{layout.root}:b", str(out), "--json")
    assert other.code == 0, other.err
    assert other.json()["flats"][0]["reused"] is False
    assert (flat_of(out, config) / "app").read_text() == "a"
    record = json.loads((out / ".lamina/flats" / f"{config['digest'].split(':')[1]}.json")
                        .read_text())
    assert record["layers"] == [sha256(recompressed)]


def test_a_record_of_the_wrong_shape_is_not_trusted(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    config = image(layout, [APP])
    out = tmp_path / "out"
    assert lamina("unpack", f"oci:{layout.root}:test", str(out)).code == 0
    record = out / ".lamina/flats" / f"{config['digest'].split(':')[1]}.json"
    for broken in (b"not json", b"[]", json.dumps({"layers": "x"}).encode()):
        record.write_bytes(broken)
        result = lamina("unpack", f"oci:{layout.root}:test", str(out), "--json")
        assert result.code == 0, result.err
        assert result.json()["flats"][0]["reused"] is False
        assert json.loads(record.read_text())["layers"] == [sha256(APP)]


def test_an_uncompressed_layer_verifies_with_its_blob_digest_as_diff_id(
        lamina: Lamina, tmp_path: Path) -> None:
    """An uncompressed layer (as skopeo may write to a layout) has DiffID = blob digest."""
    layout = RawLayout(tmp_path / "layout")
    plain = tar_bytes([f("plain", "p")])
    raw_config = layout.json_blob(config_doc([sha256(plain)]))
    layout.tag_desc(layout.manifest({"mediaType": CONFIG, **raw_config},
                                    [desc(layout.blob(plain), len(plain),
                                          "application/vnd.oci.image.layer.v1.tar")]))
    result = lamina("unpack", f"oci:{layout.root}:test", str(tmp_path / "out"), "--json")
    assert result.code == 0, result.err
    assert os.path.isfile(tmp_path / "out/localhost/test:latest/plain")
