"""Load-time checks of every path a layer definition names, through the confined resolver.

A recipe is refused at load, located at the key, when a path escapes its layer directory
(or a rootfs symlink its root filesystem), does not exist, or names a directory holding a
name that is not UTF-8, so that ``plan`` reports it before anything is read or built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamina.confine import PathRefused, inside, refusal, shown, text_problem, tree_problem
from lamina.errors import Location, RecipeError
from lamina.platforms import SUPPORTED, Platform, parse_platform
from lamina.yamlio import PathKey

if TYPE_CHECKING:
    from lamina.recipe import Layer


def check_layer_paths(layer: Layer) -> None:
    spec, kind = layer.spec, layer.kind
    if kind == "rootfs" and "tarball" in spec:
        _check_file(layer, ("tarball",))
    if kind == "rootfs" and "debs" in spec:
        _check_symlinks(layer)
    if kind == "pip":
        if spec.get("requirements") and "{arch}" in str(spec["lock"]):
            for arch in SUPPORTED:  # lamina lock makes it: only the path is checked here
                layer.file(("lock",), parse_platform(arch))
        else:
            _check_file(layer, ("lock",))
        if "requirements" in spec:
            _check_file(layer, ("requirements",))
    if kind == "files":
        _check_file(layer, ("source",), "directory")
    if kind == "script":
        _check_file(layer, ("script",))
        for index in range(len(spec.get("inputs", []))):
            _check_file(layer, ("inputs", index), "any")


def _check_file(layer: Layer, key: PathKey, want: str = "file") -> None:
    """The path at ``key`` is confined to the layer directory and exists (``want`` "file",
    "directory" or "any"); an ``{arch}`` template needs one platform's file."""
    node: Any = layer.spec
    for part in key:
        node = node[part]
    text = str(node)
    platforms: list[Platform | None] = (
        [parse_platform(p) for p in SUPPORTED] if "{arch}" in text else [None])
    found = False
    for platform in platforms:
        path = layer.file(key, platform)
        try:
            found = found or (path.is_dir() if want == "directory" else
                              path.is_file() if want == "file" else path.exists())
        except OSError as exc:
            raise layer.doc.error(key, f"cannot use '{shown(text)}': {exc.strerror}") from None
        if path.is_dir():
            problem = tree_problem(path)
            if problem is not None:
                raise layer.doc.error(key, f"in '{shown(text)}': {problem}")
    if not found and "{arch}" in text:
        raise layer.doc.error(key, f"no file matches '{shown(text)}' in {layer.directory}")
    if not found:
        kind = "directory" if want == "directory" else "file"
        raise layer.doc.error(key, f"{kind} '{shown(text)}' not found in {layer.directory}")


def _check_symlinks(layer: Layer) -> None:
    """``debs.symlinks``: each link path stays inside the root filesystem being assembled."""
    for link, target in (layer.spec.get("debs", {}).get("symlinks") or {}).items():
        key = ("debs", "symlinks", link)
        reason = text_problem(link)
        if reason is not None:
            raise layer.doc.error(key, str(refusal(link, reason, "root filesystem", "")))
        if "\x00" in target:
            raise layer.doc.error(key, "the link target contains a NUL byte")


def check_in_project(root: Path, directory: Path) -> None:
    """A layer or image directory (a symlink, perhaps) must be inside the project."""
    try:
        inside(root, directory.relative_to(root).as_posix(), where="project")
    except PathRefused as exc:
        raise RecipeError(str(exc), Location(directory.parent)) from None
