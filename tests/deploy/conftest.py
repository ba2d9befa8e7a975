from tests.apiserver.conftest import cluster

__all__ = ["cluster"]
