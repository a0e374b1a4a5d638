"""Property: whatever a layout's documents and layers say, ``lamina unpack`` either unpacks it
or fails in one line (exit 1 or 2), never with a traceback, and writes nothing outside its
target: a sentinel directory at an absolute path beside it (which the layers name) and the
layout itself stay byte for byte as they were."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.cli import main
from tests.unpack.oci import (
    CONFIG,
    GZIP_LAYER,
    INDEX,
    MANIFEST,
    Entry,
    RawLayout,
    config_doc,
    desc,
    diff_id,
    gz,
    tar_bytes,
)
from tests.unpack.test_hostile_layers import entries
from tests.unpack.test_security import snapshot

INDEX_FAULTS = ["not-json", "list", "manifests-object", "entry-string",
                             "no-digest", "bad-digest", "annotations-list", "size-string",
                             "no-size", "nested-index-platform-string", "index-of-garbage"]
MANIFEST_FAULTS = ["config-list", "config-missing", "config-no-digest",
                                "layers-string", "layers-object", "layer-no-digest",
                                "layer-size-wrong", "not-json", "deep", "extra-layer",
                                "config-digest-other", "annotations-list"]
CONFIG_FAULTS = ["rootfs-missing", "diff-ids-string", "diff-id-wrong",
                              "diff-ids-short", "config-list", "arch-hostile", "not-json",
                              "surrogates", "env-hostile"]
BLOB_FAULTS = [None] * 6 + ["truncate", "flip-byte", "garbage", "zstd", "missing",
                            "uncompressed", "empty", "pax-huge", "tampered"]
ODD_NAMES = ["caf\udce9", "\udcff\udcfe", "dir/\udc80x", "a" * 300, "ü/ß"]


@st.composite
def document_faults(draw: st.DrawFn) -> tuple[str | None, str | None, str | None]:
    """At most one broken document, most often none, so that the layers get their turn."""
    site = draw(st.sampled_from(["none", "none", "none", "index", "manifest", "config"]))
    return (draw(st.sampled_from(INDEX_FAULTS)) if site == "index" else None,
            draw(st.sampled_from(MANIFEST_FAULTS)) if site == "manifest" else None,
            draw(st.sampled_from(CONFIG_FAULTS)) if site == "config" else None)


@st.composite
def layer_entries(draw: st.DrawFn) -> list[Entry]:
    found = draw(st.lists(entries(), min_size=1, max_size=6))
    for name in draw(st.lists(st.sampled_from(ODD_NAMES), max_size=2)):
        found.append(Entry(name, draw(st.sampled_from(["file", "dir", "symlink"])), b"x",
                           0o644, "caf\udce9"))
    return found


def layer_blob(layer: list[Entry], sentinel: Path, fault: str | None) -> tuple[bytes, str]:
    """The layer's blob (possibly broken) and the DiffID its config will claim."""
    fixed = [Entry(e.name.replace("@SENTINEL@", str(sentinel)), e.kind, e.data, e.mode,
                   e.linkname.replace("@SENTINEL@", str(sentinel))) for e in layer]
    plain = tar_bytes(fixed)
    blob = gz(plain)
    claimed = diff_id(blob)
    if fault == "truncate":
        blob = blob[:len(blob) // 2]
    elif fault == "flip-byte":
        blob = blob[:10] + bytes([blob[10] ^ 0x55]) + blob[11:]
    elif fault == "garbage":
        blob = b"\x1f\x8bnot really gzip at all" * 3
    elif fault == "zstd":
        blob = b"\x28\xb5\x2f\xfd" + b"\0" * 40
    elif fault == "uncompressed":
        blob = plain
        claimed = diff_id(plain)
    elif fault == "empty":
        blob = b""
    elif fault == "pax-huge":
        header = bytearray(plain[:512])
        header[156] = ord("x")  # a PAX header claiming 8 GiB
        header[124:136] = b"77777777777\0"
        header[148:156] = b"        "
        header[148:155] = f"{sum(header):06o}\0".encode()
        blob = gzip.compress(bytes(header) + b"\0" * 4096, mtime=0)
    return blob, claimed


def broken_index(layout: RawLayout, manifest: dict[str, Any], fault: str | None) -> None:
    ref = {"org.opencontainers.image.ref.name": "test"}
    entry: Any = {**manifest, "annotations": ref}
    if fault == "not-json":
        layout.write_index(b"{\"manifests\": [")
        return
    if fault == "list":
        layout.write_index([entry])
        return
    if fault == "nested-index-platform-string":
        child = layout.json_blob({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
            {**manifest, "platform": "linux/amd64"}]})
        entry = {"mediaType": INDEX, **child, "annotations": ref}
    elif fault == "index-of-garbage":
        child = layout.json_blob({"schemaVersion": 2, "mediaType": INDEX,
                                  "manifests": [{"digest": 5}, "x", None]})
        entry = {"mediaType": INDEX, **child, "annotations": ref}
    elif fault == "entry-string":
        entry = manifest["digest"]
    elif fault == "no-digest":
        entry = {k: v for k, v in entry.items() if k != "digest"}
    elif fault == "bad-digest":
        entry = {**entry, "digest": "sha256:../../../sentinel"}
    elif fault == "annotations-list":
        entry = {**entry, "annotations": ["test"]}
    elif fault == "size-string":
        entry = {**entry, "size": str(entry["size"])}
    elif fault == "no-size":
        entry = {k: v for k, v in entry.items() if k != "size"}
    manifests: Any = {"0": entry} if fault == "manifests-object" else [entry]
    layout.write_index({"schemaVersion": 2, "manifests": manifests})


def broken_config(diff_ids: list[str], fault: str | None) -> Any:
    doc = config_doc(diff_ids)
    if fault == "rootfs-missing":
        del doc["rootfs"]
    elif fault == "diff-ids-string":
        doc["rootfs"]["diff_ids"] = ",".join(diff_ids)
    elif fault == "diff-id-wrong":
        doc["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64 for _ in diff_ids]
    elif fault == "diff-ids-short":
        doc["rootfs"]["diff_ids"] = diff_ids[:-1]
    elif fault == "config-list":
        doc["config"] = ["Env", "A=b"]
    elif fault == "arch-hostile":
        doc["architecture"] = "../../sentinel"
    elif fault == "not-json":
        return b"\xff\xfe{"
    elif fault == "surrogates":
        return json.dumps(doc).replace('"Env": []', '"Env": ["X=\\udc80"], "Cmd": '
                                                    '["\\ud800"]').encode()
    elif fault == "env-hostile":
        doc["config"] = {"Env": ["A=$(touch /tmp/x)", "B", "=", 7, None],
                         "Entrypoint": "not a list", "Cmd": [["nested"]], "WorkingDir": 5}
    return doc


def broken_manifest(layout: RawLayout, config: dict[str, Any], layers: list[dict[str, Any]],
                    fault: str | None) -> dict[str, Any]:
    cfg: Any = config
    lay: Any = layers
    extra: dict[str, Any] = {}
    if fault == "not-json":
        return {"mediaType": MANIFEST, **layout.json_blob(b"{]")}
    if fault == "deep":
        return {"mediaType": MANIFEST, **layout.json_blob(b"[" * 30000 + b"]" * 30000)}
    if fault == "config-list":
        cfg = [config]
    elif fault == "config-missing":
        cfg = None
    elif fault == "config-no-digest":
        cfg = {k: v for k, v in config.items() if k != "digest"}
    elif fault == "config-digest-other":
        cfg = {**config, "digest": layers[0]["digest"] if layers else config["digest"]}
    elif fault == "layers-string":
        lay = "layers"
    elif fault == "layers-object":
        lay = {"0": layers[0]} if layers else {}
    elif fault == "layer-no-digest" and layers:
        lay = [{k: v for k, v in layers[0].items() if k != "digest"}, *layers[1:]]
    elif fault == "layer-size-wrong" and layers:
        lay = [{**layers[0], "size": layers[0]["size"] + 1}, *layers[1:]]
    elif fault == "extra-layer" and layers:
        lay = [*layers, layers[0]]
    elif fault == "annotations-list":
        extra["annotations"] = ["a"]
    return layout.manifest(cfg, lay, **extra)


def outside(jail: Path, out: Path) -> dict[str, tuple[int, bytes | str]]:
    return {p: v for p, v in snapshot(jail).items()
            if p != str(out) and not p.startswith(f"{out}/")}


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@settings(derandomize=True, max_examples=250, deadline=None)
@given(layers=st.lists(layer_entries(), min_size=1, max_size=2),
       blob_faults=st.lists(st.sampled_from(BLOB_FAULTS), min_size=2, max_size=2),
       faults=document_faults())
def test_crafted_layouts_unpack_or_fail_in_one_line_and_stay_inside(
        layers: list[list[Entry]], blob_faults: list[str | None],
        faults: tuple[str | None, str | None, str | None]) -> None:
    index_fault, manifest_fault, config_fault = faults
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        jail = Path(tmp)
        sentinel = jail / "sentinel"
        (sentinel / "a").mkdir(parents=True)
        (sentinel / "target").write_text("precious")
        layout = RawLayout(jail / "layout")
        blobs, diff_ids = [], []
        for layer, fault in zip(layers, blob_faults, strict=False):
            blob, claimed = layer_blob(layer, sentinel, fault)
            blobs.append(blob)
            diff_ids.append(claimed)
        layer_descs = [desc(layout.blob(b), len(b), GZIP_LAYER) for b in blobs]
        for descriptor, fault in zip(layer_descs, blob_faults, strict=False):
            path = layout.root / "blobs/sha256" / descriptor["digest"][7:]
            if fault == "missing":
                path.unlink()
            elif fault == "tampered":  # same size, other bytes: only the digest tells
                data = bytearray(path.read_bytes())
                data[len(data) // 2] ^= 0x01
                path.write_bytes(bytes(data))
        config = {"mediaType": CONFIG,
                  **layout.json_blob(broken_config(diff_ids, config_fault))}
        manifest = broken_manifest(layout, config, layer_descs, manifest_fault)
        broken_index(layout, manifest, index_fault)
        out = jail / "out"
        before = outside(jail, out)

        code, stdout, err = run_cli("unpack", f"oci:{layout.root}:test", str(out), "--json",
                            "--max-bytes", "64M")

        assert outside(jail, out) == before, "nothing outside the target (sentinel, layout) changed"
        assert "Traceback" not in err and "internal error" not in err, err
        if code == 0:
            assert (out / "localhost/test:latest").is_symlink()
            assert json.loads(stdout)["public"] == "localhost/test:latest"
            return
        assert code in (1, 2), (code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lamina: error: "), err
        assert not list(out.glob(".flat/*/*")), "a failed unpack leaves no flat"
