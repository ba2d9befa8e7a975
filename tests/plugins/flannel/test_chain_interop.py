"""podnet's plugins and the reference ones on one node, on one cni0 and one host-local
data dir, as they meet on a node being migrated:

- ref-bridge: our flannel delegating to the reference /usr/lib/cni/bridge, which calls
  our host-local (CNI_PATH = a dir with only our flannel and host-local, then /usr/lib/cni);
- ref-ipam-client: the reference bridge run directly with our host-local as its IPAM;
- podnet: our whole chain (CNI_PATH = podnet's bin dir only).

Every pod reaches every other. The Debian reference plugins speak CNI up to 1.0.0, so
all three run 1.0.0. subnet.env says FLANNEL_IPMASQ=true (kube-flannel's default: the
agent masquerades), so no bridge installs masquerade here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podnet.plugins._install import install_executables
from tests.plugins.flannel._chain import GATEWAY, NETWORK, NOTHING_LEFT, ChainNode
from tests.plugins.main._support import (
    REFERENCE_DIR,
    Cni,
    bridge_state,
    ping,
    pod_address,
    with_prev,
)

REFERENCE_BRIDGE = os.path.join(REFERENCE_DIR, "bridge")
VERSION = "1.0.0"
AGENT_MASQUERADES = (
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\n"
    "FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
)

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        not os.access(REFERENCE_BRIDGE, os.X_OK), reason="reference bridge not installed"
    ),
]


class Paths:
    """The three ways a pod's network is set up on the node, and the config each takes."""

    def __init__(self, chain: ChainNode, tmp_path: Path) -> None:
        ours_without_bridge = tmp_path / "bin-no-bridge"
        install_executables(str(ours_without_bridge), ["flannel", "host-local"])
        mixed = f"{ours_without_bridge}:{REFERENCE_DIR}"
        flannel = str(chain.bin_dir / "flannel")
        self.chain = chain
        self.conf = chain.flannel_conf(VERSION)
        # name -> (runner, executable, config)
        self.ways: dict[str, tuple[Cni, str, dict[str, Any]]] = {
            "ref-bridge": (chain.runner(mixed), flannel, self.conf),
            "ref-ipam-client": (chain.runner(mixed), REFERENCE_BRIDGE, self.bridge_conf()),
            "podnet": (chain.runner(str(chain.bin_dir)), flannel, self.conf),
        }

    def bridge_conf(self) -> dict[str, Any]:
        """What flannel would hand to bridge on this node (its ipam dir included)."""
        return {
            "cniVersion": VERSION,
            "name": NETWORK,
            "type": "bridge",
            "hairpinMode": True,
            "isDefaultGateway": True,
            "isGateway": True,
            "ipMasq": False,
            "mtu": 1450,
            "ipam": {
                "type": "host-local",
                "dataDir": str(self.chain.ipam_dir),
                "ranges": [[{"subnet": "10.244.1.0/24"}]],
                "routes": [{"dst": "10.244.0.0/16"}],
            },
        }

    def run(self, way: str, command: str, pod: str, cid: str, prev: Any = None) -> Any:
        runner, exe, conf = self.ways[way]
        outcome = runner.run(
            command, with_prev(conf, prev), netns=pod, container_id=cid, executable=exe
        )
        assert outcome.ok, (way, command, outcome.out or outcome.stderr)
        return outcome.out


def test_reference_and_podnet_pods_share_a_node(
    cni_bin: Path, node_netns: str, pod_netns: Callable[[], str], tmp_path: Path
) -> None:
    chain = ChainNode(
        node=node_netns,
        root=tmp_path,
        bin_dir=cni_bin / "bin",
        subnet_env_text=AGENT_MASQUERADES,
    )
    paths = Paths(chain, tmp_path)
    # the reference creates cni0, then the three ways take turns
    order = ["ref-bridge", "podnet", "ref-ipam-client"] * 2
    pods = [(way, pod_netns(), f"{way}-{i}") for i, way in enumerate(order)]
    results = {cid: paths.run(way, "ADD", pod, cid) for way, pod, cid in pods}

    addresses = {cid: pod_address(result) for cid, result in results.items()}
    assert len(set(addresses.values())) == len(pods)
    assert chain.ipam_files() == sorted(addresses.values())
    assert chain.scratch_files() == sorted(cid for way, _, cid in pods if way != "ref-ipam-client")
    assert bridge_state(chain.node) == ([f"{GATEWAY}/24"], 1450)
    assert len(chain.veths()) == len(pods)
    for _, pod, cid in pods:
        assert ping(pod, GATEWAY), f"{cid} cannot reach the gateway"
        for _, _, other in pods:
            if other != cid:
                assert ping(pod, addresses[other]), f"{cid} cannot reach {other}"

    # podnet's own CHECK passes on a node the reference set up
    podnet_pod = next((pod, cid) for way, pod, cid in pods if way == "podnet")
    paths.run("podnet", "CHECK", *podnet_pod, prev=results[podnet_pod[1]])

    # DEL, with the bridges swapped for half of the flannel pods: as on a node whose
    # plugins were replaced while pods ran (the scratch config says only "bridge")
    swap = {"ref-bridge": "podnet", "podnet": "ref-bridge"}
    for i, (way, pod, cid) in enumerate(pods):
        by = swap.get(way, way) if i % 2 else way
        paths.run(by, "DEL", pod, cid, prev=results[cid])
    assert chain.leftovers([pod for _, pod, _ in pods]) == NOTHING_LEFT
