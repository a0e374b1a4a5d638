"""Malformed OCI layouts: each is one line naming the file and what was expected, exit 1 (or 2
for a path that is not a layout), never a traceback, and nothing is left in the output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.core.conftest import CliResult
from tests.unpack.oci import (
    CONFIG,
    GZIP_LAYER,
    INDEX,
    MANIFEST,
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
LAYER = gz(tar_bytes([f("hello", "hi")]))


def fails(lamina: Lamina, tmp_path: Path, layout: RawLayout, code: int = 1,
          ref: str = "test") -> str:
    out = tmp_path / "out"
    result = lamina("unpack", f"oci:{layout.root}:{ref}" if ref else f"oci:{layout.root}",
                    str(out))
    assert result.code == code, (result.code, result.err)
    assert "Traceback" not in result.err and "internal error" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("lamina: error: ")
    assert not list(out.glob(".flat/*/*")), "a refused unpack leaves no flat"
    assert not list(out.glob(".flat/*/.tmp-*")), "nor a temporary one"
    return lines[0].removeprefix("lamina: error: ")


def blob_name(layout: RawLayout, digest: str) -> str:
    return str(layout.root / "blobs" / "sha256" / digest.split(":")[1])


def good_manifest(layout: RawLayout) -> dict[str, Any]:
    config, layers = layout.image_parts([LAYER])
    return layout.manifest(config, layers)


@pytest.mark.parametrize(("index", "expected"), [
    (b"{not json", "{index}:1:2: not valid JSON: Expecting property name enclosed in "
                   "double quotes"),
    (b"", "{index}:1:1: not valid JSON: Expecting value"),
    (b"\x89PNG\r\n", "{index}: not UTF-8 (byte 0 is not valid UTF-8)"),
    ([], "{index}: (top level): expected an object, got a list"),
    ({"manifests": {"digest": "sha256:" + "0" * 64}},
     "{index}: manifests: expected a list, got an object"),
    ({"manifests": ["sha256:" + "0" * 64]}, "{index}: manifests[0]: expected an object, got a "
                                            "string"),
    ({"manifests": [{"mediaType": MANIFEST, "size": 10}]},
     "{index}: manifests[0].digest: a descriptor without a digest"),
    ({"manifests": [{"mediaType": MANIFEST, "digest": ["sha256:x"], "size": 1}]},
     "{index}: manifests[0].digest: invalid digest a list in an image document (expected "
     "sha256:<64 hex digits> or sha512:<128 hex digits>)"),
    ({"manifests": [{"mediaType": MANIFEST, "digest": "sha256:" + "0" * 64}]},
     "{index}: manifests[0].size: a descriptor without a size"),
    ({"manifests": [{"mediaType": MANIFEST, "digest": "sha256:" + "0" * 64, "size": "12"}]},
     "{index}: manifests[0].size: expected an integer, got a string"),
    ({"manifests": [{"mediaType": MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1,
                     "annotations": ["org.opencontainers.image.ref.name=test"]}]},
     "{index}: manifests[0].annotations: expected an object, got a list"),
    ({"manifests": [{"mediaType": MANIFEST, "digest": "sha256:" + "0" * 64, "size": 1,
                     "annotations": {"org.opencontainers.image.ref.name": 7}}]},
     "{index}: manifests[0].annotations.org.opencontainers.image.ref.name: expected a string, "
     "got a number"),
    ({"manifests": [{"mediaType": 2, "digest": "sha256:" + "0" * 64, "size": 1}]},
     "{index}: manifests[0].mediaType: expected a string, got a number"),
    (b"[" * 50000 + b"]" * 50000, "{index}: not usable JSON: nested too deeply"),
])
def test_malformed_index_json(lamina: Lamina, tmp_path: Path, index: Any,
                              expected: str) -> None:
    layout = RawLayout(tmp_path / "layout")
    layout.write_index(index)
    message = fails(lamina, tmp_path, layout)
    assert message == expected.format(index=layout.root / "index.json")


def test_a_huge_index_json_is_not_read(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    layout.write_index(b'{"manifests": [], "pad": "' + b"x" * (5 << 20) + b'"}')
    assert fails(lamina, tmp_path, layout) == (
        f"{layout.root / 'index.json'}: the image index is larger than 4194304 bytes; "
        "refusing to read it")


def manifest_cases(layout: RawLayout) -> list[tuple[dict[str, Any], str]]:
    """(manifest descriptor, expected message with {m} for its blob path)."""
    config, layers = layout.image_parts([LAYER])
    no_digest = {k: v for k, v in layers[0].items() if k != "digest"}
    return [
        (layout.manifest([config], layers), "{m}: config: expected an object, got a list"),
        (layout.manifest(config, "sha256:" + "0" * 64),
         "{m}: layers: expected a list, got a string"),
        (layout.manifest(config, {"0": layers[0]}), "{m}: layers: expected a list, got an object"),
        (layout.manifest(config, [no_digest]), "{m}: layers[0].digest: a descriptor without a "
                                               "digest"),
        (layout.manifest(None, layers), "{m}: config: a manifest without a config descriptor"),
        (layout.manifest({**config, "annotations": []}, layers),
         "{m}: config.annotations: expected an object, got a list"),
        (layout.manifest(config, [{**layers[0], "size": -1}]),
         "{m}: layers[0].size: a negative size (-1)"),
        ({"mediaType": MANIFEST, **layout.json_blob(b"not json")},
         "{m}:1:1: not valid JSON: Expecting value"),
        ({"mediaType": MANIFEST, **layout.json_blob(["a", "list"])},
         "{m}: (top level): expected an object, got a list"),
    ]


def test_malformed_manifests(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    for number, (descriptor, expected) in enumerate(manifest_cases(layout)):
        layout.tag_desc(descriptor)
        message = fails(lamina, tmp_path / str(number), layout)
        assert message == expected.format(m=blob_name(layout, descriptor["digest"])), number


def test_malformed_index_entries(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    child = good_manifest(layout)
    cases = [
        ([{**child, "platform": "linux/amd64"}],
         "{i}: manifests[0].platform: expected an object, got a string"),
        ([{**child, "platform": {"architecture": ["amd64"]}}],
         "{i}: manifests[0].platform.architecture: expected a string, got a list"),
        ({"0": child}, "{i}: manifests: expected a list, got an object"),
        ([{**child, "digest": None}], "{i}: manifests[0].digest: a descriptor without a digest"),
    ]
    for number, (manifests, expected) in enumerate(cases):
        index = layout.json_blob({"schemaVersion": 2, "mediaType": INDEX,
                                  "manifests": manifests})
        layout.tag_desc({"mediaType": INDEX, **index})
        message = fails(lamina, tmp_path / str(number), layout)
        assert message == expected.format(i=blob_name(layout, index["digest"])), number


def test_malformed_configs(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    layers = [desc(layout.blob(LAYER), len(LAYER), GZIP_LAYER)]
    good = config_doc([diff_id(LAYER)])
    cases: list[tuple[Any, str]] = [
        ({**good, "rootfs": None}, "{c}: rootfs: expected an object, got null"),
        ({**good, "rootfs": {"type": "layers", "diff_ids": diff_id(LAYER)}},
         "{c}: rootfs.diff_ids: expected a list, got a string"),
        ({**good, "rootfs": {"type": "squashfs", "diff_ids": []}},
         "{c}: rootfs.type: expected 'layers', got 'squashfs'"),
        ({**good, "rootfs": {"type": "layers", "diff_ids": ["../../etc"]}},
         "{c}: rootfs.diff_ids[0]: invalid digest '../../etc' in an image document (expected "
         "sha256:<64 hex digits> or sha512:<128 hex digits>)"),
        ({**good, "config": ["Env"]}, "{c}: config: expected an object, got a list"),
        ({**good, "architecture": {"name": "amd64"}},
         "{c}: architecture: expected a string, got an object"),
        (["not", "an", "object"], "{c}: (top level): expected an object, got a list"),
        (b"\x00\x01binary", "{c}:1:1: not valid JSON: Expecting value"),
    ]
    for number, (config, expected) in enumerate(cases):
        descriptor = {"mediaType": CONFIG, **layout.json_blob(config)}
        layout.tag_desc(layout.manifest(descriptor, layers))
        message = fails(lamina, tmp_path / str(number), layout)
        assert message == expected.format(c=blob_name(layout, descriptor["digest"])), number


def test_missing_blobs(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    config, layers = layout.image_parts([LAYER])
    manifest = layout.manifest(config, layers)
    layout.tag_desc(manifest)
    blobs = {name: Path(blob_name(layout, d["digest"])) for name, d in
             (("layer", layers[0]), ("config", config), ("manifest", manifest))}
    for what, path in blobs.items():
        saved = path.read_bytes()
        path.unlink()
        digest = "sha256:" + path.name
        assert fails(lamina, tmp_path / what, layout) == (
            f"{what} {digest} is missing from {layout.root}")
        path.write_bytes(saved)


def test_a_huge_manifest_is_not_read(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    config, layers = layout.image_parts([LAYER])
    descriptor = layout.manifest(config, layers, padding="x" * (5 << 20))
    layout.tag_desc(descriptor)
    assert fails(lamina, tmp_path, layout) == (
        f"{blob_name(layout, descriptor['digest'])}: the manifest is larger than 4194304 "
        "bytes; refusing to read it")


def test_a_deeply_nested_manifest(lamina: Lamina, tmp_path: Path) -> None:
    layout = RawLayout(tmp_path / "layout")
    descriptor = {"mediaType": MANIFEST, **layout.json_blob(b"[" * 100000 + b"]" * 100000)}
    layout.tag_desc(descriptor)
    assert fails(lamina, tmp_path, layout) == (
        f"{blob_name(layout, descriptor['digest'])}: not usable JSON: nested too deeply")


def test_not_a_layout_is_a_usage_error(lamina: Lamina, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = lamina("unpack", f"oci:{tmp_path / 'empty'}", str(tmp_path / "out"))
    assert result.code == 2
    assert result.err.strip() == (f"lamina: error: {tmp_path / 'empty' / 'index.json'} not "
                                  "found (not an OCI image layout?)")


def test_lone_surrogates_in_the_config_become_replacement_characters(
        lamina: Lamina, tmp_path: Path) -> None:
    """Go's encoding/json (the unpacker's reader) turns an invalid \\u escape into U+FFFD."""
    layout = RawLayout(tmp_path / "layout")
    layers = [desc(layout.blob(LAYER), len(LAYER), GZIP_LAYER)]
    raw = json.dumps(config_doc([diff_id(LAYER)])).replace(
        '"Env": []', '"Env": ["A=x\\ud800y"], "Cmd": ["\\udfff"]').encode()
    descriptor = {"mediaType": CONFIG, "digest": layout.blob(raw), "size": len(raw)}
    layout.tag_desc(layout.manifest(descriptor, layers))
    result = lamina("unpack", f"oci:{layout.root}:test", str(tmp_path / "out"))
    assert result.code == 0, result.err
    env = (tmp_path / "out/localhost/test:latest/.singularity.d/env/10-docker2singularity.sh")
    assert 'export A="${A:-"x\ufffdy"}"' in env.read_text()
    assert sha256(raw) == descriptor["digest"]


@pytest.mark.parametrize(("index", "expected"), [
    (b"{", "{index}:1:2: not valid JSON: Expecting property name enclosed in double quotes"),
    (b"[]", "{index}: (top level): expected an object, got a list"),
    (json.dumps({"manifests": [{"annotations": {"org.opencontainers.image.ref.name": "app-amd64"
                                                }}]}).encode(),
     "{index}: manifests[0].digest: a descriptor without a digest"),
])
def test_a_store_whose_index_is_broken(lamina: Lamina, tmp_path: Path, index: bytes,
                                       expected: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "index.json").write_bytes(index)
    result = lamina("-C", str(tmp_path), "unpack", "app", str(tmp_path / "out"), "--store",
                    str(store))
    assert result.code == 1
    assert result.err == f"lamina: error: {expected.format(index=store / 'index.json')}\n"
