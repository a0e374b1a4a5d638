"""Requested pip packages get import tests, with a name → module map where they differ."""

from __future__ import annotations

from pathlib import Path

from lamina.autotests import import_tests, module_for, requested_packages
from lamina.recipe import load_layer


def test_requested_packages_reads_requirements_and_locks() -> None:
    text = """# comment
numpy==2.1.0 \\
    --hash=sha256:aa
scikit-learn>=1.5
uproot[xrootd]==5.4 ; python_version >= "3.9"
--index-url https://example.invalid/simple
    --hash=sha256:bb
NumPy==2.1.0
"""
    assert requested_packages(text) == ["numpy", "scikit-learn", "uproot"]


def test_module_names_map_and_overrides() -> None:
    assert module_for("scikit-learn", {}) == "sklearn"
    assert module_for("boost-histogram", {}) == "boost_histogram"
    assert module_for("Boost_Histogram", {"boost-histogram": "bh"}) == "bh"
    assert module_for("jupyterhub", {"jupyterhub": None}) is None


def test_pip_layer_gets_one_import_test_per_requested_package(tmp_path: Path) -> None:
    layer_dir = tmp_path / "framework"
    layer_dir.mkdir()
    (layer_dir / "requirements.in").write_text("numpy\nscikit-learn\nsome-cli-tool\n")
    (layer_dir / "requirements-amd64.lock").write_text("numpy==2 \\\n  --hash=sha256:aa\n")
    (layer_dir / "layer.yaml").write_text(
        "kind: pip\nlock: requirements-{arch}.lock\nrequirements: requirements.in\n"
        "imports:\n  some-cli-tool: null\n")
    tests = import_tests(load_layer("framework", layer_dir))
    assert [t.name for t in tests] == ["import numpy", "import sklearn"]
    assert tests[1].run == "python3 -c 'import sklearn'"
    assert tests[0].origin == "layer framework (automatic)"
