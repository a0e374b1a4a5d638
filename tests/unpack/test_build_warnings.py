"""The build's DUCC checks on a node's own layers (lamina.hygiene.ducc_ingest_warnings).

DUCC ingests each layer alone (cvmfs/cvmfs ducc/lib/image.go IngestIntoCVMFSWithLogger runs
``cvmfs_server ingest --tolerate-missing-hardlinks``) and resolves a hardlink only against
the same tar (cvmfs/sync_union_tarball.cc PostUpload): a link to a lower layer's file is an
empty file on CVMFS. Layers are read with gzip.NewReader (image.go downloadLayerWithLogger).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from lamina.errors import ToolError
from lamina.hygiene import ducc_ingest_warnings
from lamina.nodebuild import NodeResult
from lamina.plan import PlanEntry
from lamina.platforms import parse_platform
from lamina.summary import print_summary
from tests.unpack.oci import f, gz, hard, sym, tar_bytes


def test_a_hardlink_to_a_lower_layer_file_is_a_warning_naming_it(tmp_path: Path) -> None:
    blob = tmp_path / "layer"
    blob.write_bytes(gz(tar_bytes([
        hard("./opt/hello/greeting-link.txt", "opt/hello/greeting.txt"),  # lower layer
        hard("later-link", "own"), f("own", "mine"),  # same layer, even before its target
        sym("lib", "usr/lib"), hard("lib-link", "lib")])))
    assert ducc_ingest_warnings(blob, "links") == [
        "layer links: /opt/hello/greeting-link.txt is a hardlink to /opt/hello/greeting.txt "
        "of a lower layer; unpacked.cern.ch shows it as an empty file (DUCC ingests each layer "
        "alone): copy the file instead"]


def test_a_layer_that_is_not_gzip_fails_the_build(tmp_path: Path) -> None:
    blob = tmp_path / "layer"
    blob.write_bytes(tar_bytes([f("plain", "p")]))
    with pytest.raises(ToolError) as raised:
        ducc_ingest_warnings(blob, "plain")
    assert str(raised.value) == ("layer plain is not gzip-compressed: unpacked.cern.ch reads "
                                 "every layer through gzip.NewReader and could not ingest it")


def test_the_build_summary_prints_each_warning_on_one_line() -> None:
    entry = PlanEntry("app", parse_platform("linux/amd64"), "build", "changed")
    warning = ("layer links: /opt/hello/greeting-link.txt is a hardlink to "
               "/opt/hello/greeting.txt of a lower layer; unpacked.cern.ch shows it as an "
               "empty file (DUCC ingests each layer alone): copy the file instead")
    console = Console(record=True, width=80)
    print_summary([NodeResult(entry, "built", 1.0, warnings=[warning])], "build", console)
    assert f"WARNING app linux/amd64: {warning}" in console.export_text().splitlines()
