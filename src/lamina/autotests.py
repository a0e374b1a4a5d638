"""Automatic import tests for every package a pip layer asks for.

A wheel that installs but does not import (a missing system library, a wrong platform tag
that slipped through) is the classic failure of a scientific Python image; an import test
per requested package catches it in the image, on each platform, without anyone writing it.

Each test says what it imports with which interpreter (``module``, ``python``) besides the
shell line that does it, so a node's import tests run in one interpreter, one module after
the other, each still reported on its own (:mod:`lamina.testrunner`); importing coffea once
instead of once per test is most of a HEP image's test time.
"""

from __future__ import annotations

import re
import shlex

from lamina.platforms import SUPPORTED, parse_platform
from lamina.recipe import Layer, TestSpec

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:[=<>!~;@]|$)")

# Distribution name → module name, where they differ. A layer's `imports:` overrides these
# (and `null` there skips a package that has nothing to import, e.g. a CLI-only tool).
KNOWN_MODULES = {
    "scikit-learn": "sklearn",
    "scikit-image": "skimage",
    "pyyaml": "yaml",
    "pillow": "PIL",
    "python-dateutil": "dateutil",
    "beautifulsoup4": "bs4",
    "msgpack-python": "msgpack",
    "protobuf": "google.protobuf",
    "jupyterlab": "jupyterlab",
    "jupyter-server": "jupyter_server",
    "opencv-python": "cv2",
    "opencv-python-headless": "cv2",
    "typing-extensions": "typing_extensions",
    "uproot": "uproot",
    "fsspec-xrootd": "fsspec_xrootd",
    "xrootd": "XRootD",
}


def requested_packages(text: str) -> list[str]:
    """Distribution names a requirements or lock file asks for, in order, without hashes."""
    names: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("-", "--")):
            continue
        match = REQUIREMENT.match(line)
        if match and match[1].lower() not in (n.lower() for n in names):
            names.append(match[1])
    return names


def module_for(name: str, overrides: dict[str, str | None]) -> str | None:
    normal = re.sub(r"[-_.]+", "-", name).lower()
    for key, value in overrides.items():
        if re.sub(r"[-_.]+", "-", key).lower() == normal:
            return value
    return KNOWN_MODULES.get(normal, normal.replace("-", "_"))


def import_tests(layer: Layer) -> list[TestSpec]:
    if layer.kind != "pip":
        return []
    spec = layer.spec
    source = spec.get("requirements")
    if source is None:
        # the first platform's lock that exists, through the confined resolver
        candidates = [path for arch in SUPPORTED
                      if (path := layer.file(("lock",), parse_platform(arch))).is_file()]
        if not candidates:
            return []
        text = candidates[0].read_text()
    else:
        text = layer.file(("requirements",)).read_text()
    overrides: dict[str, str | None] = dict(spec.get("imports") or {})
    prefix = spec.get("prefix", "/usr/local")
    python = spec.get("python", "python3") if prefix == "/usr/local" else f"{prefix}/bin/python"
    tests = []
    for name in requested_packages(text):
        module = module_for(name, overrides)
        if module is None:
            continue
        tests.append(TestSpec(name=f"import {module}",
                              run=f"{shlex.quote(python)} -c {shlex.quote('import ' + module)}",
                              origin=f"layer {layer.name} (automatic)", python=python,
                              module=module))
    return tests
