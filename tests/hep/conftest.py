from tests.core.conftest import lamina, tree
from tests.publish.conftest import tls_registry

__all__ = ["lamina", "tls_registry", "tree"]
