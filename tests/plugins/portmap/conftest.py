"""The interface plugins' fixtures (tests/plugins/main/conftest.py), plus a node with two
pods serving on port 80 and a host outside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.main._support import Cni
from tests.plugins.main.conftest import NetnsFactory, cni_bin, netns_factory, node_netns, pod_netns
from tests.plugins.portmap._node import HostPortNode

__all__ = ["cni_bin", "hostport_node", "netns_factory", "node_netns", "pod_netns", "portmap"]


@pytest.fixture
def hostport_node(netns_factory: NetnsFactory, node_netns: str) -> Iterator[HostPortNode]:
    node = HostPortNode(
        node=node_netns,
        outside=netns_factory("out"),
        pods=[netns_factory("pod"), netns_factory("pod")],
    )
    try:
        node.build()
        yield node
    finally:
        node.stop()


@pytest.fixture
def portmap(cni_bin: Path, node_netns: str, tmp_path: Path) -> Cni:
    """Runs podnet's installed executables inside the node namespace."""
    return Cni(root=cni_bin, node=node_netns, data_dir=tmp_path / "ipam")
