"""A node to run pods on: a network namespace made for the test, with a conf dir, cache,
netns dir, state dir and host-local data dir under tmp_path. Everything the plugins
create (cni0, veths) lives in the node namespace, which is deleted at the end with every
pod namespace left under the netns dir.

`plugin_dirs` is parametrised over plugin sets: the reference Go plugins in /usr/lib/cni,
and podnet's own executables (skipped until bridge, host-local and loopback are
registered in podnet.plugins.PLUGIN_MODULES).
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from podnet.netlink import create_netns, delete_netns, run_in_netns
from podnet.runtime import PodRuntime, ProcessExec, RuntimePaths

T = TypeVar("T")

REFERENCE_BIN = "/usr/lib/cni"
NEEDED_TYPES = ("bridge", "host-local", "loopback")
PLUGIN_SETS = ("reference", "podnet")
SUBNET = "10.244.1.0/24"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bridge_plugin(ipam_dir: str, *, subnet: str = SUBNET, bridge: str = "cni0") -> dict[str, Any]:
    return {
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "ipMasq": False,
        "ipam": {
            "type": "host-local",
            "subnet": subnet,
            "dataDir": ipam_dir,
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }


@dataclass
class Node:
    netns: str
    root: str
    bin_dirs: list[str]

    @property
    def conf_dir(self) -> str:
        return os.path.join(self.root, "net.d")

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.root, "cache")

    @property
    def netns_dir(self) -> str:
        return os.path.join(self.root, "netns")

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "pods")

    @property
    def ipam_dir(self) -> str:
        return os.path.join(self.root, "ipam")

    @property
    def scripts_dir(self) -> str:
        return os.path.join(self.root, "scripts")

    @property
    def paths(self) -> RuntimePaths:
        return RuntimePaths(
            conf_dir=self.conf_dir,
            bin_dirs=(*self.bin_dirs, self.scripts_dir),
            cache_dir=self.cache_dir,
            netns_dir=self.netns_dir,
            state_dir=self.state_dir,
        )

    def runtime(self, *, timeout: float = 20.0, warn: Callable[[str], None] | None = None):
        return PodRuntime(self.paths, exec_=ProcessExec(timeout=timeout), warn=warn)

    def call(self, func: Callable[[], T]) -> T:
        """Run `func` inside the node's namespace (plugins it starts inherit it)."""
        return run_in_netns(self.netns, func)

    def write_conflist(
        self,
        *plugins: dict[str, Any],
        name: str = "podnet-test",
        filename: str = "10-test.conflist",
        version: str = "1.0.0",
        **extra: Any,
    ) -> str:
        os.makedirs(self.conf_dir, exist_ok=True)
        path = os.path.join(self.conf_dir, filename)
        obj = {"cniVersion": version, "name": name, "plugins": list(plugins), **extra}
        with open(path, "w") as handle:
            json.dump(obj, handle, indent=2)
        return path

    def bridge(self, **kwargs: Any) -> dict[str, Any]:
        return bridge_plugin(self.ipam_dir, **kwargs)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`podnet ARGS --<path flags>` run inside the node namespace."""
        flags = [
            "--conf-dir",
            self.conf_dir,
            "--bin-dir",
            ":".join(self.paths.bin_dirs),
            "--cache-dir",
            self.cache_dir,
            "--netns-dir",
            self.netns_dir,
            "--state-dir",
            self.state_dir,
        ]
        command = ["nsenter", f"--net={self.netns}", sys.executable, "-m", "podnet.cli.main"]
        return subprocess.run(
            [*command, *args, *flags],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            check=False,
        )

    # ---- what is left on disk ---------------------------------------------------------

    def allocated_ips(self, network: str = "podnet-test") -> set[str]:
        directory = os.path.join(self.ipam_dir, network)
        found = set()
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            try:
                found.add(str(ipaddress.ip_address(name)))
            except ValueError:
                continue  # lock, last_reserved_ip.0
        return found

    def cache_files(self) -> list[str]:
        directory = os.path.join(self.cache_dir, "results")
        return sorted(os.listdir(directory)) if os.path.isdir(directory) else []

    def pod_netns(self) -> list[str]:
        return sorted(os.listdir(self.netns_dir)) if os.path.isdir(self.netns_dir) else []

    def records(self) -> list[str]:
        if not os.path.isdir(self.state_dir):
            return []
        return sorted(n for n in os.listdir(self.state_dir) if not n.startswith("."))


def podnet_bin(directory: str) -> str:
    from podnet.plugins import PLUGIN_MODULES, install_executables

    missing = [t for t in NEEDED_TYPES if t not in PLUGIN_MODULES]
    if missing:
        pytest.skip(f"podnet plugins not registered yet: {', '.join(missing)}")
    install_executables(directory, NEEDED_TYPES)
    return directory


@pytest.fixture(params=PLUGIN_SETS)
def plugin_dirs(request: pytest.FixtureRequest, tmp_path) -> list[str]:
    if request.param == "reference":
        return [REFERENCE_BIN]
    return [podnet_bin(str(tmp_path / "podnet-bin"))]


def _make_node(tmp_path, bin_dirs: list[str]) -> Iterator[Node]:
    root = str(tmp_path / "node")
    os.makedirs(root)
    node = Node(os.path.join(root, f"pn-node-{uuid.uuid4().hex[:8]}"), root, bin_dirs)
    create_netns(node.netns)
    try:
        yield node
    finally:
        for name in node.pod_netns():
            delete_netns(os.path.join(node.netns_dir, name))
        delete_netns(node.netns)


@pytest.fixture
def node(tmp_path, plugin_dirs: list[str]) -> Iterator[Node]:
    """A node for each plugin set."""
    yield from _make_node(tmp_path, plugin_dirs)


@pytest.fixture
def ref_node(tmp_path) -> Iterator[Node]:
    """A node with the reference plugins only (failure and CLI tests)."""
    yield from _make_node(tmp_path, [REFERENCE_BIN])
