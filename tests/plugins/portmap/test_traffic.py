"""hostPorts with real traffic: podnet's portmap executable run as a runtime runs it, in a
node namespace, and clients in other namespaces (outside, another pod, the node, the pod
itself) reaching a server in the pod through the node's address."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.cni import start_agent
from podnet.netlink import read_sysctl, run_in_netns
from podnet.plugins._install import install_executables
from tests.plugins.main._support import Cni
from tests.plugins.portmap._node import (
    GATEWAY,
    GATEWAY6,
    NODE_IP,
    NODE_IP6,
    OUTSIDE_IP,
    OUTSIDE_IP6,
    POD_IPS,
    POD_IPS6,
    HostPortNode,
    pod_result,
    portmap_conf,
    wait_for,
)

pytestmark = pytest.mark.root

TCP_8080 = {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}
UDP_5353 = {"hostPort": 5353, "containerPort": 80, "protocol": "udp"}


def test_a_hostport_is_reached_from_everywhere_with_the_reference_snat(
    hostport_node: HostPortNode, portmap: Cni
) -> None:
    node = hostport_node
    pod1, pod2 = node.pods
    prev = pod_result(pod1, POD_IPS[0])
    out = portmap.add(portmap_conf([TCP_8080, UDP_5353], prev), netns=pod1, container_id="p1")
    assert out["ips"] == prev["ips"]  # the previous result passes through
    # from outside the node: DNAT only, the pod sees the client
    assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
    assert node.connect(node.outside, NODE_IP, 5353, "udp") == OUTSIDE_IP
    # from another pod of the subnet, to the node's address and to its address on the
    # bridge: masqueraded, as the reference's iptables backend does (the answer would
    # otherwise go straight over the bridge, past the node's conntrack)
    assert node.connect(pod2, NODE_IP, 8080) == GATEWAY
    assert node.connect(pod2, GATEWAY, 8080) == GATEWAY
    # from the node itself (its own address is the source), and from 127.0.0.1
    # (masqueraded, with route_localnet on cni0)
    assert node.connect(node.node, NODE_IP, 8080) == NODE_IP
    assert node.connect(node.node, "127.0.0.1", 8080) == GATEWAY
    assert read_sysctl(node.node, "net/ipv4/conf/cni0/route_localnet") == "1"
    # hairpin: the pod reaches its own hostPort, masqueraded so the answer comes back
    assert node.connect(pod1, NODE_IP, 8080) == GATEWAY
    # the pod's port itself is not the node's
    assert node.connect(node.outside, NODE_IP, 80).startswith("error")


def test_a_dual_stack_pod_is_reached_over_both_families(
    hostport_node: HostPortNode, portmap: Cni
) -> None:
    node = hostport_node
    pod1, pod2 = node.pods
    prev = pod_result(pod1, POD_IPS[0], address6=POD_IPS6[0])
    portmap.add(portmap_conf([TCP_8080, UDP_5353], prev), netns=pod1, container_id="p1")
    assert node.connect(node.outside, NODE_IP6, 8080) == OUTSIDE_IP6
    assert node.connect(node.outside, NODE_IP6, 5353, "udp") == OUTSIDE_IP6
    assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
    assert node.connect(pod2, NODE_IP6, 8080) == GATEWAY6  # same subnet: masqueraded
    assert node.connect(node.node, NODE_IP6, 8080) == NODE_IP6
    assert node.connect(pod1, NODE_IP6, 8080) == GATEWAY6  # hairpin
    assert node.connect(pod1, GATEWAY, 8080) == GATEWAY
    # a hostIP of one family maps that family only
    v6_only = {"hostPort": 9090, "containerPort": 80, "protocol": "tcp", "hostIP": NODE_IP6}
    portmap.add(portmap_conf([v6_only], prev), netns=pod1, container_id="p1b")
    assert node.connect(node.outside, NODE_IP6, 9090) == OUTSIDE_IP6
    assert node.connect(node.outside, NODE_IP, 9090).startswith("error")


def test_snat_false_leaves_hairpin_and_localhost_unmasqueraded(
    hostport_node: HostPortNode, portmap: Cni
) -> None:
    node = hostport_node
    pod1 = node.pods[0]
    conf = portmap_conf([TCP_8080], pod_result(pod1, POD_IPS[0]), snat=False)
    portmap.add(conf, netns=pod1, container_id="p1")
    assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
    # the pod answers its own address directly: the reply never matches the connection
    assert node.connect(pod1, NODE_IP, 8080).startswith("error")


def test_masq_all_masquerades_every_mapped_connection(
    hostport_node: HostPortNode, portmap: Cni
) -> None:
    node = hostport_node
    pod1 = node.pods[0]
    conf = portmap_conf([TCP_8080], pod_result(pod1, POD_IPS[0]), masqAll=True)
    portmap.add(conf, netns=pod1, container_id="p1")
    assert node.connect(node.outside, NODE_IP, 8080) == GATEWAY
    assert node.connect(node.node, "127.0.0.1", 8080) == GATEWAY
    # traffic to the pod that no hostPort mapped keeps its source
    assert node.connect(node.outside, POD_IPS[0], 80) == OUTSIDE_IP


def test_host_ip_maps_only_that_address(hostport_node: HostPortNode, portmap: Cni) -> None:
    node = hostport_node
    pod1 = node.pods[0]
    mapping = {"hostPort": 9090, "containerPort": 80, "protocol": "tcp", "hostIP": NODE_IP}
    portmap.add(portmap_conf([mapping], pod_result(pod1, POD_IPS[0])), netns=pod1)
    assert node.connect(node.pods[1], NODE_IP, 9090) == GATEWAY
    assert node.connect(node.pods[1], GATEWAY, 9090).startswith("error")


def test_del_unmaps_even_without_prev_result(hostport_node: HostPortNode, portmap: Cni) -> None:
    node = hostport_node
    pod1 = node.pods[0]
    conf = portmap_conf([TCP_8080], pod_result(pod1, POD_IPS[0]))
    portmap.add(conf, netns=pod1, container_id="p1")
    assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
    outcome = portmap.run("DEL", portmap_conf([TCP_8080], None), container_id="p1")
    assert outcome.ok, outcome.out
    assert node.connect(node.outside, NODE_IP, 8080).startswith("error")
    # and the port is free for another pod
    conf2 = portmap_conf([TCP_8080], pod_result(node.pods[1], POD_IPS[1]))
    portmap.add(conf2, netns=node.pods[1], container_id="p2")
    assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
    assert node.connect(node.node, "127.0.0.1", 8080) == GATEWAY


def accepts(socket_path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(socket_path)
        except OSError:
            return False
    return True


def test_served_by_the_agent(hostport_node: HostPortNode, tmp_path: Path) -> None:
    """The launcher installed with an agent socket: the warm agent maps the port."""
    node = hostport_node
    pod1 = node.pods[0]
    socket_path = str(tmp_path / "agent.sock")
    log = tmp_path / "agent.log"
    root = tmp_path / "agent-cni"
    install_executables(str(root / "bin"), agent_socket=socket_path)
    agent = run_in_netns(node.node, lambda: start_agent(socket_path, str(log)))
    try:
        # the socket file appears at bind(), a moment before listen(): wait for the latter
        assert wait_for(lambda: accepts(socket_path), 20.0), "the agent never listened"
        cni_log = tmp_path / "cni.log"
        cni = Cni(
            root=root,
            node=node.node,
            data_dir=tmp_path / "ipam",
            extra_env={"PODNET_LOG_FILE": str(cni_log)},
        )
        conf = portmap_conf([TCP_8080], pod_result(pod1, POD_IPS[0]))
        cni.add(conf, netns=pod1, container_id="p1")
        assert node.connect(node.outside, NODE_IP, 8080) == OUTSIDE_IP
        assert cni.run("DEL", conf, container_id="p1").ok
        assert node.connect(node.outside, NODE_IP, 8080).startswith("error")
        assert agent.poll() is None
        # the fallback would have logged that the agent was unreachable
        assert not cni_log.exists() or "unreachable" not in cni_log.read_text()
    finally:
        agent.terminate()
        agent.wait(10)
    assert "Traceback" not in log.read_text()
