"""``lamina init``: an analyst's own repository on top of a published image, pinned by digest.

The analyst's layer is the only thing they change, so the scaffold is one image with one pip
layer (their requirements) and one files layer (their code), a test that imports the code,
and a CI file that builds and tests it on every push. The parent is pinned by digest so the
analysis does not move when the facility publishes a new framework.
"""

from __future__ import annotations

import re
from pathlib import Path

from lamina.errors import UsageError
from lamina.recipe import EXTERNAL_RE, NAME_RE

FILES: dict[str, str] = {
    "recipe.yaml": """\
# {name}: an analysis image on top of {parent}
name: {name}
platforms: [linux/amd64]
""",
    "images/{name}/image.yaml": """\
description: {name} analysis environment
parent: {parent}
layers: [{name}-requirements, {name}-code]
env:
  PYTHONPATH: /opt/{name}
tests:
  - name: analysis code imports
    run: python3 -c 'import {module}'
""",
    "layers/{name}-requirements/layer.yaml": """\
kind: pip
description: extra Python packages of this analysis (requirements.in -> hashed lock)
requirements: requirements.in
lock: requirements.lock
""",
    "layers/{name}-requirements/requirements.in": """\
# one requirement per line; lock with: pip-compile --generate-hashes requirements.in
""",
    "layers/{name}-requirements/requirements.lock": """\
# generated from requirements.in with hashes; empty until you add requirements
""",
    "layers/{name}-code/layer.yaml": """\
kind: files
description: the analysis code, the layer that changes most often
source: src
dest: /opt/{name}
""",
    "layers/{name}-code/src/{module}/__init__.py": '''\
"""{name} analysis."""
''',
    ".gitlab-ci.yml": """\
# Build and test the analysis image on every push; publish on tags.
stages: [build]
build:
  stage: build
  script:
    - pip install lamina
    - lamina build
""",
    ".gitignore": ".lamina/\n",
}


def scaffold(target: Path, name: str, parent: str) -> list[Path]:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"name '{name}' must match {NAME_RE.pattern}")
    if EXTERNAL_RE.fullmatch(parent) is None:
        raise UsageError(f"parent '{parent}' must be a published image pinned by digest "
                         "(REGISTRY/REPO[:TAG]@sha256:<64 hex>)")
    if (target / "recipe.yaml").exists():
        raise UsageError(f"{target / 'recipe.yaml'} exists; refusing to overwrite a project")
    module = re.sub(r"[^a-z0-9_]", "_", name)
    written: list[Path] = []
    for template, text in FILES.items():
        path = target / template.format(name=name, module=module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(name=name, module=module, parent=parent))
        written.append(path)
    return written
