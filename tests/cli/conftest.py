from tests.backends import backend, store

__all__ = ["backend", "store"]
