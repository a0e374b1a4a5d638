"""lamina's wheel cache is mounted for pip steps only: a layer holding anything at its mount
point (a step that copied wheels out of it, or a backend that committed the mount) is refused
by the hygiene check, with the path named."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from lamina.hygiene import scan_layer
from lamina.pipcache import MOUNT


def layer(path: Path, names: list[str]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = b"wheel bytes"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return path


def test_a_layer_holding_the_wheel_cache_is_refused(tmp_path: Path) -> None:
    assert MOUNT == "/run/lamina-pip-cache"
    blob = layer(tmp_path / "leaky.tar.gz", [
        "usr/", "usr/local/lib/python3.11/dist-packages/six.py", "run/",
        "run/lamina-pip-cache/", "run/lamina-pip-cache/wheels/six-1.16.0-py2.py3-none-any.whl"])
    assert [str(f) for f in scan_layer(blob, "six")] == [
        "six: /run/lamina-pip-cache (lamina's pip cache)",
        "six: /run/lamina-pip-cache/wheels/six-1.16.0-py2.py3-none-any.whl (lamina's pip cache)"]


def test_a_layer_with_other_run_entries_is_not_refused(tmp_path: Path) -> None:
    blob = layer(tmp_path / "clean.tar.gz", [
        "run/", "run/lamina-pip-cache-notes.txt", "usr/local/lib/python3.11/dist-packages/six.py"])
    assert scan_layer(blob, "six") == []
