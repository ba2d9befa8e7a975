"""What install-cni writes, used as a node uses it: `podnet install-cni` fills a bin dir
and a conf dir, then podnet's runtime (`podnet pod ...`, run inside the node namespace
with every path under tmp) starts pods from 10-flannel.conflist alone: flannel, podnet's
bridge and host-local, cniVersion 1.1.0 with CHECK and STATUS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from podnet.netlink import delete_netns, is_netns
from podnet.plugins._install import default_conflist
from tests.plugins.flannel._chain import GATEWAY, NOTHING_LEFT, ChainNode
from tests.plugins.main._support import bridge_state, ping
from tests.plugins.portmap._node import connect, serve, stop_server

pytestmark = pytest.mark.root

PODNET = [sys.executable, "-m", "podnet.cli.main"]


class InstalledNode:
    def __init__(self, node: str, root: Path) -> None:
        self.root = root
        self.bin_dir = root / "opt-cni-bin"
        self.conf_dir = root / "net.d"
        self.netns_dir = root / "netns"
        # subnet.env (as the agent would have written it), flannel/ and networks/ in root
        self.chain = ChainNode(node=node, root=root, bin_dir=self.bin_dir)

    def install_cni(self) -> None:
        done = subprocess.run(
            [
                *PODNET,
                "install-cni",
                "--bin-dir",
                str(self.bin_dir),
                "--conf-dir",
                str(self.conf_dir),
                "--subnet-file",
                str(self.chain.subnet_env),
                "--cni-data-dir",
                str(self.chain.root),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def _flags(self) -> list[str]:
        flags = {
            "--conf-dir": self.conf_dir,
            "--bin-dir": self.bin_dir,
            "--cache-dir": self.root / "cache",
            "--netns-dir": self.netns_dir,
            "--state-dir": self.root / "pods",
        }
        return [str(part) for item in flags.items() for part in item]

    def pod(self, *args: str) -> str:
        """`podnet ARGS` in the node namespace, with the node's paths."""
        done = subprocess.run(
            ["nsenter", f"--net={self.chain.node}", *PODNET, *args, *self._flags()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def pod_fails(self, *args: str) -> str:
        """`podnet ARGS` that must fail: its stderr."""
        done = subprocess.run(
            ["nsenter", f"--net={self.chain.node}", *PODNET, *args, *self._flags()],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0, done.stdout
        return done.stderr

    def pod_netns_left(self) -> list[str]:
        return sorted(os.listdir(self.netns_dir)) if self.netns_dir.exists() else []


@pytest.fixture
def installed(node_netns: str, tmp_path: Path) -> Iterator[InstalledNode]:
    node = InstalledNode(node_netns, tmp_path)
    try:
        yield node
    finally:
        for name in node.pod_netns_left():
            path = str(node.netns_dir / name)
            if is_netns(path):
                delete_netns(path)


def test_pods_from_the_installed_conflist(installed: InstalledNode) -> None:
    installed.install_cni()
    chain = installed.chain
    conflist = json.loads((installed.conf_dir / "10-flannel.conflist").read_text())
    assert conflist == default_conflist(subnet_file=str(chain.subnet_env), data_dir=str(chain.root))

    pods = [json.loads(installed.pod("pod", "run", name, "-o", "json")) for name in ("a", "b")]
    assert [p["cniVersion"] for p in pods] == ["1.1.0", "1.1.0"]
    ips = [p["ip"] for p in pods]
    assert len(set(ips)) == 2 and all(ip.startswith("10.244.1.") for ip in ips)
    assert bridge_state(chain.node) == ([f"{GATEWAY}/24"], 1450)
    assert ping(pods[0]["netns"], ips[1]) and ping(pods[1]["netns"], GATEWAY)
    # state lands where the conflist says, nowhere else
    assert chain.ipam_files() == sorted(ips)
    assert chain.scratch_files() == sorted(p["sandboxId"] for p in pods)
    assert sorted(chain.masq()) == sorted(ips)

    assert installed.pod("pod", "check", "a") == "pod default/a: ok\n"
    status = json.loads(installed.pod("cni", "status", "-o", "json"))
    assert (status["ready"], status["cniVersion"]) == (True, "1.1.0")
    assert [p["type"] for p in status["plugins"]] == ["flannel", "portmap"]

    for name in ("a", "b"):
        installed.pod("pod", "rm", name)
    assert installed.pod_netns_left() == []
    assert chain.leftovers([]) == NOTHING_LEFT


def test_pod_run_port_maps_a_host_port_until_the_pod_stops(installed: InstalledNode) -> None:
    """`podnet pod run --port`: the runtime passes portMappings to the conflist's portmap,
    and again to DEL and CHECK from its cache."""
    installed.install_cni()
    node = installed.chain.node
    subprocess.run(["nsenter", f"--net={node}", "ip", "link", "set", "lo", "up"], check=True)
    web = json.loads(installed.pod("pod", "run", "web", "--port", "8080:80/tcp", "-o", "json"))
    client = json.loads(installed.pod("pod", "run", "client", "-o", "json"))
    server = serve(web["netns"])
    try:
        # from another pod and from the node, through the node's address on cni0
        assert connect(client["netns"], GATEWAY, 8080) == GATEWAY  # masqueraded: same subnet
        assert connect(node, "127.0.0.1", 8080) == GATEWAY
        assert installed.pod("pod", "check", "web") == "pod default/web: ok\n"
        cached = json.loads(installed.pod("pod", "inspect", "web"))["cache"]["capabilityArgs"]
        assert cached == {
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
        }
        # a second pod asking for the same hostPort is refused, and leaves nothing behind
        refused = installed.pod_fails("pod", "run", "web2", "--port", "8080:80")
        assert "hostPort 8080/tcp is already mapped on this node" in refused
        installed.pod("pod", "stop", "web")
        assert connect(node, "127.0.0.1", 8080).startswith("error")
    finally:
        stop_server(server)
    bad = installed.pod_fails("pod", "run", "web3", "--port", "8080")
    assert "expected [HOSTIP:]HOST:CONTAINER[/PROTO]" in bad
    for name in ("web", "client"):
        installed.pod("pod", "rm", name)
    assert installed.pod_netns_left() == []
