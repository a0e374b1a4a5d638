"""The mode and time each directory of an unpack must end with, applied once at the end.

Directory modes are applied last so that a read-only directory of a lower layer can still
receive files from an upper one, and times last because adding a child changes a directory's
mtime. They are kept in a tree keyed by path component, not a flat dict keyed by path: removing
a subtree (a whiteout, an opaque directory, a file replacing a directory) is then one deletion,
not a scan of every recorded directory, and the final pass visits children before their parent
(post-order, so a parent made 0555 or 0000 is changed only after everything below it) walking
depth first, which :class:`~lamina.unpack.dirchain.DirChain` serves with one ``openat`` per
directory. Both walks are loops, never recursion, whatever the depth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


@dataclass
class _Node:
    meta: tuple[int, float] | None = None
    children: dict[str, _Node] = field(default_factory=dict)


class DirMeta:
    """``(mode, mtime)`` per directory path (a tuple of components)."""

    def __init__(self) -> None:
        self._root = _Node()

    def set(self, parts: Sequence[str], mode: int, mtime: float) -> None:
        node = self._root
        for comp in parts:
            node = node.children.setdefault(comp, _Node())
        node.meta = (mode, mtime)

    def get(self, parts: Sequence[str]) -> tuple[int, float] | None:
        node: _Node | None = self._root
        for comp in parts:
            node = node.children.get(comp) if node is not None else None
        return node.meta if node is not None else None

    def discard(self, parts: Sequence[str]) -> None:
        """Forget ``parts`` and everything recorded below it (it was removed)."""
        if not parts:
            self._root = _Node()
            return
        node: _Node | None = self._root
        for comp in parts[:-1]:
            node = node.children.get(comp) if node is not None else None
        if node is not None:
            node.children.pop(parts[-1], None)

    def deepest_first(self) -> Iterator[tuple[tuple[str, ...], tuple[int, float]]]:
        """Every recorded directory, each after all those below it, depth first."""
        path: list[str] = []
        stack: list[tuple[_Node, Iterator[tuple[str, _Node]]]] = [
            (self._root, iter(sorted(self._root.children.items())))]
        while stack:
            node, children = stack[-1]
            step = next(children, None)
            if step is not None:
                name, child = step
                path.append(name)
                stack.append((child, iter(sorted(child.children.items()))))
                continue
            stack.pop()
            if node.meta is not None and path:
                yield tuple(path), node.meta
            if path:
                path.pop()
