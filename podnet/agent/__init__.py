"""The node agent: flanneld's job, plus the warm executor of CNI requests."""

from podnet.agent._cni_server import DEFAULT_SOCKET, CNIServer

__all__ = ["DEFAULT_SOCKET", "CNIServer"]
