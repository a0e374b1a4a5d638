"""Build backends behind one small interface (:class:`~lamina.builders.base.Builder`)."""

from __future__ import annotations

from lamina.builders.base import Builder
from lamina.errors import UsageError


def get_builder(name: str) -> Builder:
    if name == "buildah":
        from lamina.builders.buildah import BuildahBuilder

        return BuildahBuilder()
    if name == "docker":
        try:
            from lamina.builders.docker import DockerBuilder
        except ImportError:
            raise UsageError("the docker builder is not available in this version") from None
        builder: Builder = DockerBuilder()
        return builder
    raise UsageError(f"unknown builder '{name}' (expected buildah or docker)")
