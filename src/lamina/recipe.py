"""The recipe tree: ``recipe.yaml``, ``images/<name>/image.yaml`` and ``layers/<name>/layer.yaml``.

This is the one place the image graph is read and checked. Everything downstream (plan,
render, build, CI pipeline, CVMFS entries, JupyterHub values) receives a :class:`Recipe`
and never re-reads YAML, so a mistake is reported once, with file, line and key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.confine import PathRefused, inside, shown
from lamina.errors import Location, RecipeError
from lamina.layerpaths import check_in_project, check_layer_paths
from lamina.platforms import Platform, host_platform, parse_platform
from lamina.quoting import Origin, argv
from lamina.schemas import load_schema, validate
from lamina.yamlio import PathKey, YamlDoc, load_yaml

# Patterns are applied with fullmatch: `$` alone would accept a trailing newline.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
EXTERNAL_RE = re.compile(
    r"(?P<repo>[a-z0-9.-]+(?::[0-9]+)?/[a-z0-9._/-]+)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*))?"
    r"@(?P<digest>sha256:[0-9a-f]{64})"
)
DEFAULT_EPOCH = 1_700_000_000


@dataclass(frozen=True)
class TestSpec:
    """A shell command that must exit 0 inside the image; ``origin`` says who declared it."""

    name: str
    run: str
    origin: str
    user: str | None = None
    platforms: tuple[str, ...] = ()
    # an automatic import test (lamina.autotests): what ``run`` does, so that a node's import
    # tests can share one interpreter (lamina.testrunner)
    python: str | None = None
    module: str | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    directory: Path
    spec: dict[str, Any]
    doc: YamlDoc
    tests: tuple[TestSpec, ...] = ()
    # (key, expanded text) -> the path the resolver gave: one command resolves each path of a
    # layer once, not once per use (loading checks it, each platform's rendering reads it)
    _resolved: dict[tuple[PathKey, str | None], Path] = field(
        default_factory=dict, compare=False, repr=False)
    # resolved path -> the hash of the tree there (lamina.layerkinds): each platform's
    # rendering of one command reads the same files, so they are hashed once
    tree_digests: dict[Path, str] = field(default_factory=dict, compare=False, repr=False)

    def file(self, key: PathKey, platform: Platform | None = None) -> Path:
        """The real path the spec value at ``key`` names in the layer directory (``{arch}``
        expanded for ``platform``), through the one confined resolver; it need not exist."""
        node: Any = self.spec
        for part in key:
            node = node[part]
        text = str(node)
        expanded = shown_platform = None
        if platform is not None and "{arch}" in text:
            expanded = text.replace("{arch}", platform.arch)
            shown_platform = platform.name
        known = self._resolved.get((key, expanded))
        if known is not None:
            return known
        try:
            real = inside(self.directory, text, expanded=expanded, platform=shown_platform)
        except PathRefused as exc:
            raise self.doc.error(key, str(exc)) from None
        self._resolved[(key, expanded)] = real
        return real


@dataclass(frozen=True)
class ExternalParent:
    reference: str
    repository: str
    digest: str


@dataclass
class Image:
    name: str
    directory: Path
    doc: YamlDoc
    parent_name: str | None  # another image of the tree, or None for scratch/external
    external: ExternalParent | None
    layers: list[Layer]
    platforms: list[Platform]
    exclusions: dict[str, str]
    env: dict[str, str]
    workdir: str | None
    user: str | None
    entrypoint: list[str] | None
    cmd: list[str] | None
    labels: dict[str, str]
    build_args: dict[str, str]
    tests: list[TestSpec]
    description: str = ""
    publish: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_root(self) -> bool:
        return self.parent_name is None

    def excluded(self, platform: Platform) -> str | None:
        return self.exclusions.get(platform.name)


@dataclass
class Recipe:
    root: Path
    doc: YamlDoc
    settings: dict[str, Any]
    platforms: list[Platform]
    images: dict[str, Image]
    layers: dict[str, Layer]
    order: list[str]  # parents before children, ties broken by name

    def image(self, name: str) -> Image:
        try:
            return self.images[name]
        except KeyError:
            known = ", ".join(sorted(self.images)) or "none"
            raise RecipeError(f"unknown image '{name}' (images in the tree: {known})") from None

    def children(self, name: str) -> list[str]:
        return [n for n in self.order if self.images[n].parent_name == name]

    def ancestors(self, name: str) -> list[str]:
        """Parents of ``name``, nearest first."""
        out: list[str] = []
        parent = self.images[name].parent_name
        while parent is not None:
            out.append(parent)
            parent = self.images[parent].parent_name
        return out

    def descendants(self, name: str) -> list[str]:
        out: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for child in self.children(current):
                out.append(child)
                frontier.append(child)
        return [n for n in self.order if n in out]

    def select(self, names: list[str] | None) -> list[str]:
        """The requested images plus their ancestors, in build order (all when empty)."""
        if not names:
            return list(self.order)
        wanted: set[str] = set()
        for name in names:
            self.image(name)
            wanted.add(name)
            wanted.update(self.ancestors(name))
        return [n for n in self.order if n in wanted]

    def test_chain(self, name: str) -> list[TestSpec]:
        from lamina.autotests import import_tests  # autotests reads layers, needs this module

        """Tests an image must pass: its ancestors' (root first), then its own."""
        chain = [*reversed(self.ancestors(name)), name]
        tests: list[TestSpec] = []
        for image_name in chain:
            image = self.images[image_name]
            for layer in image.layers:
                tests.extend(import_tests(layer))
                tests.extend(layer.tests)
            tests.extend(image.tests)
        return tests


def _strings(mapping: dict[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (mapping or {}).items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = str(value)
    return out


def _tests(doc: YamlDoc, raw: list[dict[str, Any]] | None, origin: str) -> tuple[TestSpec, ...]:
    seen: set[str] = set()
    out: list[TestSpec] = []
    for index, item in enumerate(raw or []):
        if item["name"] in seen:
            raise doc.error(("tests", index, "name"),
                            f"duplicate test name '{shown(item['name'])}'")
        seen.add(item["name"])
        argv(item["run"], Origin(doc, ("tests", index, "run")))  # becomes sh -c's argument
        out.append(
            TestSpec(
                name=item["name"],
                run=item["run"],
                origin=origin,
                user=item.get("user"),
                platforms=tuple(item.get("platforms", [])),
            )
        )
    return tuple(out)


def load_layer(name: str, directory: Path) -> Layer:
    file = directory / "layer.yaml"
    doc = load_yaml(file)
    validate(doc, load_schema("layer"), "layer file")
    spec: dict[str, Any] = doc.data
    kind = spec["kind"]
    layer = Layer(name=name, kind=kind, directory=directory, spec=spec, doc=doc,
                  tests=_tests(doc, spec.get("tests"), f"layer {name}"))
    check_layer_paths(layer)
    return layer


def _platform_list(raw: list[str] | None, fallback: list[Platform]) -> list[Platform]:
    if not raw:
        return list(fallback)
    return [parse_platform(p) for p in raw]


def load_recipe(root: Path) -> Recipe:
    """Read and check the whole tree under ``root``; raise :class:`RecipeError` on the first
    problem."""
    root = root.resolve()
    recipe_file = root / "recipe.yaml"
    if not recipe_file.is_file():
        raise RecipeError(
            "recipe.yaml not found (run lamina inside a project, or pass -C DIR)",
            Location(recipe_file),
        )
    doc = load_yaml(recipe_file)
    validate(doc, load_schema("recipe"), "recipe")
    settings: dict[str, Any] = doc.data
    platforms = _platform_list(settings.get("platforms"), [host_platform()])

    layers: dict[str, Layer] = {}
    layers_dir = root / "layers"
    if layers_dir.is_dir():
        for sub in sorted(layers_dir.iterdir()):
            if (sub / "layer.yaml").is_file():
                if not NAME_RE.fullmatch(sub.name):
                    raise RecipeError(
                        f"layer directory name '{shown(sub.name)}' must match {NAME_RE.pattern}",
                        Location(layers_dir),
                    )
                check_in_project(root, sub)
                layers[sub.name] = load_layer(sub.name, sub)

    images: dict[str, Image] = {}
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise RecipeError("images/ directory not found", Location(images_dir))
    for sub in sorted(images_dir.iterdir()):
        if not (sub / "image.yaml").is_file():
            continue
        if not NAME_RE.fullmatch(sub.name):
            raise RecipeError(f"image directory name '{shown(sub.name)}' must match "
                              f"{NAME_RE.pattern}", Location(images_dir))
        check_in_project(root, sub)
        images[sub.name] = _load_image(sub.name, sub, layers, platforms)
    if not images:
        raise RecipeError("no images found (expected images/<name>/image.yaml)",
                          Location(images_dir))

    for image in images.values():
        if image.parent_name is not None and image.parent_name not in images:
            known = ", ".join(sorted(images))
            raise image.doc.error(
                ("parent",),
                f"unknown parent '{image.parent_name}' (expected an image of the tree "
                f"[{known}], 'scratch', or an external reference pinned by @sha256 digest)",
            )
    order = _topological_order(images)
    return Recipe(root=root, doc=doc, settings=settings, platforms=platforms, images=images,
                  layers=layers, order=order)


def _load_image(name: str, directory: Path, layers: dict[str, Layer],
                default_platforms: list[Platform]) -> Image:
    doc = load_yaml(directory / "image.yaml")
    validate(doc, load_schema("image"), "image file")
    spec: dict[str, Any] = doc.data
    parent = spec["parent"]
    parent_name: str | None = None
    external: ExternalParent | None = None
    if parent == "scratch":
        pass
    elif "/" in parent or "@" in parent:
        match = EXTERNAL_RE.fullmatch(parent)
        if match is None:
            raise doc.error(
                ("parent",),
                f"external parent '{parent}' must be pinned by digest "
                "(expected REGISTRY/REPO[:TAG]@sha256:<64 hex>)",
            )
        external = ExternalParent(parent, match["repo"], match["digest"])
    else:
        parent_name = parent
    resolved: list[Layer] = []
    for index, layer_name in enumerate(spec["layers"]):
        if layer_name not in layers:
            known = ", ".join(sorted(layers)) or "none"
            raise doc.error(("layers", index),
                            f"unknown layer '{layer_name}' (layers/ has: {known})")
        layer = layers[layer_name]
        if layer.kind == "rootfs" and (index != 0 or parent != "scratch"):
            raise doc.error(("layers", index),
                            f"rootfs layer '{layer_name}' must be the first layer of an image "
                            "whose parent is 'scratch'")
        resolved.append(layer)
    if parent == "scratch" and (not resolved or resolved[0].kind != "rootfs"):
        raise doc.error(("layers",), "an image with parent 'scratch' must start with a rootfs "
                                     "layer")
    platforms = _platform_list(spec.get("platforms"), default_platforms)
    exclusions = dict(spec.get("exclude", {}))
    extra = {k: spec[k] for k in ("jupyterhub",) if k in spec}
    return Image(
        name=name,
        directory=directory,
        doc=doc,
        parent_name=parent_name,
        external=external,
        layers=resolved,
        platforms=platforms,
        exclusions=exclusions,
        env=_strings(spec.get("env")),
        workdir=spec.get("workdir"),
        user=spec.get("user"),
        entrypoint=spec.get("entrypoint"),
        cmd=spec.get("cmd"),
        labels=_strings(spec.get("labels")),
        build_args=_strings(spec.get("build_args")),
        tests=list(_tests(doc, spec.get("tests"), f"image {name}")),
        description=spec.get("description", ""),
        publish=spec.get("publish", True),
        extra=extra,
    )


def _topological_order(images: dict[str, Image]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name):], name])
            raise images[name].doc.error(("parent",), f"parent cycle: {cycle}")
        state[name] = 1
        parent = images[name].parent_name
        if parent is not None:
            visit(parent, [*trail, name])
        state[name] = 2
        order.append(name)

    for name in sorted(images):
        visit(name, [])
    # stable: depth first, then name, so output is deterministic and readable
    depth = {n: 0 for n in order}
    for n in order:
        p = images[n].parent_name
        depth[n] = depth[p] + 1 if p is not None else 0
    return sorted(order, key=lambda n: (depth[n], n))
