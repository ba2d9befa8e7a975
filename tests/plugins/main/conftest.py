"""Namespaces and a CNI runner for the interface plugins' tests.

Every test gets its own node namespace and as many pod namespaces as it asks for, all
named pn-<role>-<random> and always deleted. Plugins run as a runtime runs them: the
installed executable, started inside the node namespace (`nsenter --net=NODE`), config
on stdin, CNI_* in the environment. IPAM is the reference host-local from the Debian
containernetworking-plugins package (/usr/lib/cni); it speaks CNI up to 1.0.0, so for
1.1.0 configs a small adapter (`host-local` in a shim dir ahead of /usr/lib/cni) hands
it the config as 1.0.0 and relabels its answer.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from podnet.netlink import create_netns, delete_netns
from podnet.plugins._install import install_executables
from tests.plugins.main._support import HOST_LOCAL_SHIM, REFERENCE_DIR, Cni

NetnsFactory = Callable[[str], str]


@pytest.fixture
def netns_factory() -> Iterator[NetnsFactory]:
    created: list[str] = []

    def make(role: str) -> str:
        path = f"/var/run/netns/pn-{role}-{uuid.uuid4().hex[:8]}"
        create_netns(path)
        created.append(path)
        return path

    try:
        yield make
    finally:
        for path in reversed(created):
            delete_netns(path)


@pytest.fixture
def node_netns(netns_factory: NetnsFactory) -> str:
    return netns_factory("node")


@pytest.fixture
def pod_netns(netns_factory: NetnsFactory) -> Callable[[], str]:
    return lambda: netns_factory("pod")


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """podnet's executables as install-cni writes them, plus the host-local shim dir."""
    root = tmp_path_factory.mktemp("cni")
    bin_dir = root / "bin"
    install_executables(str(bin_dir))
    shim_dir = root / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "host-local"
    shim.write_text(HOST_LOCAL_SHIM.format(python=sys.executable, reference=REFERENCE_DIR))
    shim.chmod(0o755)
    return root


@pytest.fixture
def cni(cni_bin: Path, node_netns: str, tmp_path: Path) -> Cni:
    return Cni(root=cni_bin, node=node_netns, data_dir=tmp_path / "ipam")
