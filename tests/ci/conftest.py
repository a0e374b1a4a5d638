"""Share the core CLI fixtures."""

from tests.core.conftest import lamina, tree

__all__ = ["lamina", "tree"]
