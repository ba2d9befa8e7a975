from tests.apiserver.conftest import cluster
from tests.backends import backend, store

__all__ = ["backend", "cluster", "store"]
