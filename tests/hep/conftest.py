from tests.core.conftest import lamina, tree

__all__ = ["lamina", "tree"]
