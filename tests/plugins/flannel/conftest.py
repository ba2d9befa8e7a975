"""Namespaces and executables for the chain tests: the interface plugins' fixtures
(tests/plugins/main/conftest.py), plus a node set up for flannel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.flannel._chain import ChainNode
from tests.plugins.main.conftest import cni_bin, netns_factory, node_netns, pod_netns

__all__ = ["chain", "cni_bin", "netns_factory", "node_netns", "pod_netns"]


@pytest.fixture
def chain(cni_bin: Path, node_netns: str, tmp_path: Path) -> ChainNode:
    """A node namespace with subnet.env for 10.244.1.0/24 and podnet's executables."""
    return ChainNode(node=node_netns, root=tmp_path, bin_dir=cni_bin / "bin")
