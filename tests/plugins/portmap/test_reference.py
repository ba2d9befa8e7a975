"""Side by side with the reference portmap (Debian's containernetworking-plugins, on
iptables): the same config gives the same traffic, seen from the pod, and the same
configs are refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.main._support import REFERENCE_DIR, Cni
from tests.plugins.portmap._node import NODE_IP, POD_IPS, HostPortNode, pod_result, portmap_conf

pytestmark = pytest.mark.root

REFERENCE = f"{REFERENCE_DIR}/portmap"
TCP_8080 = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
UDP_5353 = {"hostPort": 5353, "containerPort": 80, "protocol": "udp"}


def observe(node: HostPortNode) -> dict[str, str]:
    """Who the pod's server saw connecting, from every place a client can be."""
    pod1, pod2 = node.pods
    return {
        "outside": node.connect(node.outside, NODE_IP, 8080),
        "outside udp": node.connect(node.outside, NODE_IP, 5353, "udp"),
        "other pod": node.connect(pod2, NODE_IP, 8080),
        "node": node.connect(node.node, NODE_IP, 8080),
        "node localhost": node.connect(node.node, "127.0.0.1", 8080),
        "hairpin": node.connect(pod1, NODE_IP, 8080),
        "unmapped port": node.connect(node.outside, NODE_IP, 8081),
    }


@pytest.mark.parametrize("snat", [True, False])
def test_traffic_matches_the_reference(
    hostport_node: HostPortNode, portmap: Cni, snat: bool
) -> None:
    node = hostport_node
    pod1 = node.pods[0]
    conf = portmap_conf([TCP_8080, UDP_5353], pod_result(pod1, POD_IPS[0]), snat=snat)
    seen = {}
    for label, executable in (("reference", REFERENCE), ("podnet", None)):
        out = portmap.add(conf, netns=pod1, container_id="p1", executable=executable)
        assert out["ips"] == conf["prevResult"]["ips"]
        seen[label] = observe(node)
        outcome = portmap.run("DEL", conf, container_id="p1", executable=executable)
        assert outcome.ok, outcome.out
        assert node.connect(node.outside, NODE_IP, 8080).startswith("error"), label
    assert seen["podnet"] == seen["reference"]
    assert seen["podnet"]["outside"] == "192.0.2.2"


BAD: list[tuple[str, dict[str, Any]]] = [
    ("container port 0", {"mappings": [{"hostPort": 80, "containerPort": 0}]}),
    ("host port negative", {"mappings": [{"hostPort": -1, "containerPort": 80}]}),
    ("mark bit above 31", {"markMasqBit": 32}),
    ("mark bit below 0", {"markMasqBit": -1}),
    ("mark bit and external chain", {"markMasqBit": 5, "externalSetMarkChain": "KUBE-MARK"}),
    ("snat not a boolean", {"snat": "yes"}),
    ("mappings not a list", {"mappings": {"hostPort": 80}}),
]


@pytest.mark.parametrize("case", [case for _, case in BAD], ids=[name for name, _ in BAD])
def test_refuses_what_the_reference_refuses(
    node_netns: str, portmap: Cni, case: dict[str, Any]
) -> None:
    keys = dict(case)
    mappings = keys.pop("mappings", [TCP_8080])
    conf = portmap_conf(mappings, pod_result("/var/run/netns/x", POD_IPS[0]), **keys)
    reference = portmap.run("ADD", conf, netns="/var/run/netns/x", executable=REFERENCE)
    ours = portmap.run("ADD", conf, netns="/var/run/netns/x")
    assert not reference.ok and not ours.ok
    assert ours.out is not None and ours.out["code"] in (6, 7), ours.out
    assert ours.out["msg"]
