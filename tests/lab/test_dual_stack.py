"""`podnet lab up --dual-stack`: IPv6 beside IPv4 from the underlay to every pod, through
the whole pipeline (nodeipam's podCIDRs of both families, the agents' flannel-v6.1, the
flannel chain, the sandbox driver's status.podIPs), with real packets of both families."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from ipaddress import ip_address, ip_network

import pytest

from podnet.lab import Lab, LabPod, endpoints_of, lab_namespaces, matrix

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("dual-stack-lab")
    name = "d" + secrets.token_hex(3)
    netns_dir = tmp / "netns"
    netns_dir.mkdir()
    lab = Lab(name, root=str(tmp / "labs"), netns_dir=str(netns_dir))
    try:
        lab.up(2, dual_stack=True)
        yield lab
    finally:
        lab.down()
        assert lab_namespaces(name, netns_dir=str(netns_dir)) == []


def failed(pods: list[LabPod], version: int) -> list[tuple[str, str]]:
    endpoints = endpoints_of(pods, version)
    assert len(endpoints) == len(pods), f"a pod without an IPv{version} address"
    return [pair for pair, ok in matrix(endpoints).items() if not ok]


def test_every_pod_has_both_families_and_reaches_every_other_over_both(lab: Lab) -> None:
    nodes = {n.name: n for n in lab.nodes()}
    for node in nodes.values():
        families = sorted(ip_network(c).version for c in node.pod_cidrs)
        assert families == [4, 6], node.pod_cidrs
    with open(lab.net_conf_path) as handle:
        conf = json.load(handle)
    assert (conf["EnableIPv6"], conf["IPv6Network"]) == (True, "fd00:10:244::/56")

    pods = [LabPod(node, lab.pod_run(f"p-{node}", node).sandbox) for node in lab.node_names()]
    for pod in pods:
        v4, v6 = (ip_address(ip) for ip in pod.sandbox.ips)
        cidrs = [ip_network(c) for c in nodes[pod.node].pod_cidrs]
        assert v4.version == 4 and any(v4 in c for c in cidrs)
        assert v6.version == 6 and any(v6 in c for c in cidrs)
    objects = {p["metadata"]["name"]: p["status"] for p in lab.pod_objects()}
    for pod in pods:
        status = objects[pod.sandbox.name]
        assert status["podIP"] == pod.sandbox.ip
        assert [i["ip"] for i in status["podIPs"]] == list(pod.sandbox.ips)
    assert failed(pods, 4) == []
    assert failed(pods, 6) == []

    # a node added later gets its IPv6 underlay address too
    lab.add_node("n3")
    pods.append(LabPod("n3", lab.pod_run("p-n3", "n3").sandbox))
    assert failed(pods, 6) == []
