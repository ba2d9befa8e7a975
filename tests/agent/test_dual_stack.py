"""IPv6 and dual-stack through the agent, on real namespaces: two nodes with an IPv4 and
an IPv6 underlay address, one pod each with an address of both families.

Per backend: every pod pings every other one over both families, the kernel holds
exactly flannel's entries for each family (vxlan: flannel.1 and flannel-v6.1; host-gw: a
route per family), subnet.env and the annotations carry flannel's IPv6 keys, and pod
traffic leaving the cluster is masqueraded in both families.
"""

from __future__ import annotations

import threading
import time
import uuid
from ipaddress import IPv4Network, IPv6Address, IPv6Interface, IPv6Network

import pytest

from podnet.agent import (
    ENCAP_OVERHEAD_V6,
    AgentLoop,
    AgentSettings,
    Entries,
    NetworkConfig,
    NodeNetwork,
    RtnlTables,
    masq_counters,
    vtep_mac,
)
from podnet.lab import add_node
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    add_address,
    find_link,
    get_link,
    list_addresses,
    list_routes,
)
from tests.agent.cluster import (
    Cluster,
    pod_cidr,
    pod_cidr_v6,
    udp_source_seen,
    underlay_v6,
    unreachable_pairs,
)
from tests.agent.fake_nodes import FakeNodes

pytestmark = pytest.mark.root

IPV6 = {"EnableIPv6": True, "IPv6Network": "fd00:10:244::/56"}
DUAL_VXLAN = NetworkConfig.from_dict({"Network": "10.244.0.0/16", **IPV6})
DUAL_HOST_GW = NetworkConfig.from_dict(
    {"Network": "10.244.0.0/16", **IPV6, "Backend": {"Type": "host-gw"}}
)
V6_ONLY_VXLAN = NetworkConfig.from_dict({"EnableIPv4": False, **IPV6})


@pytest.fixture
def cluster(tmp_path):
    lab = "d" + uuid.uuid4().hex[:10]
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    made = Cluster.build(lab, str(netns_dir), str(tmp_path / "state"), 2, ipv6=True, pods=1)
    try:
        yield made
    finally:
        made.destroy()


def kernel_entries(agent: NodeNetwork) -> Entries:
    return RtnlTables(agent.rtnl).read(agent.backend.owned_devices)


def subnet_env(agent: NodeNetwork) -> list[str]:
    with open(agent.settings.subnet_file) as handle:
        return handle.read().splitlines()


def test_dual_stack_vxlan(cluster: Cluster) -> None:
    cluster.start_agents(DUAL_VXLAN)
    assert unreachable_pairs(cluster.pods) == []
    assert unreachable_pairs(cluster.pods, version=6) == []

    n1, n2 = cluster.nodes
    agent = cluster.agents["n1"]
    v4 = get_link(agent.rtnl, "flannel.1")
    v6 = get_link(agent.rtnl, "flannel-v6.1")
    assert agent.backend.owned_devices == (v4.index, v6.index)
    assert (v4.mtu, v6.mtu) == (1450, 1500 - ENCAP_OVERHEAD_V6)
    assert v6.mac == vtep_mac("n1", 1, family=6) != v4.mac
    peer = pod_cidr(n2).network_address
    peer6 = pod_cidr_v6(n2).network_address
    mac, mac6 = vtep_mac("n2", 1), vtep_mac("n2", 1, family=6)
    assert kernel_entries(agent) == Entries(
        routes=frozenset(
            {
                GatewayRoute(pod_cidr(n2), peer, v4.index, onlink=True),
                GatewayRoute(pod_cidr_v6(n2), peer6, v6.index, onlink=True),
            }
        ),
        neighbours=frozenset({Neighbour(v4.index, peer, mac), Neighbour(v6.index, peer6, mac6)}),
        fdb=frozenset(
            {FdbEntry(v4.index, mac, n2.ip), FdbEntry(v6.index, mac6, underlay_v6(n2).ip)}
        ),
    )
    # flannel's v6 device carries the lease's IPv6 network address as a /128
    v6_addresses = [a.address for a in list_addresses(agent.rtnl, v6.index, version=6)]
    assert IPv6Interface(f"{pod_cidr_v6(n1).network_address}/128") in v6_addresses
    # subnet.env as flannel writes it; one MTU for the pod's interface: the smaller device's
    assert subnet_env(agent) == [
        "FLANNEL_NETWORK=10.244.0.0/16",
        "FLANNEL_SUBNET=10.244.1.1/24",
        "FLANNEL_IPV6_NETWORK=fd00:10:244::/56",
        "FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64",
        "FLANNEL_MTU=1430",
        "FLANNEL_IPMASQ=true",
    ]
    annotations = agent.lease.annotations()
    prefix = "flannel.alpha.coreos.com/"
    assert annotations[prefix + "backend-v6-data"] == (
        '{"VNI":1,"VtepMAC":"' + vtep_mac("n1", 1, family=6) + '"}'
    )
    assert annotations[prefix + "public-ipv6"] == str(underlay_v6(n1).ip)
    assert annotations[prefix + "public-ip"] == str(n1.ip)


def test_dual_stack_vxlan_masquerades_both_families(cluster: Cluster) -> None:
    cluster.start_agents(DUAL_VXLAN)
    outside = add_node(cluster.underlay, "ext", 110)  # 192.0.2.120, no route to the pods
    outside6 = IPv6Interface("fd00:192:0:2::fa/64")
    with Rtnl.open(outside.netns) as rtnl:
        add_address(rtnl, get_link(rtnl, outside.underlay_if).index, outside6, nodad=True)
    pod, remote = cluster.pods
    assert udp_source_seen(pod.netns, outside.netns, outside.ip) == pod.node.ip
    assert udp_source_seen(pod.netns, outside.netns, outside6.ip) == underlay_v6(pod.node).ip
    assert remote.ip6 is not None
    assert udp_source_seen(pod.netns, remote.netns, remote.ip6) == pod.ip6, "pod to pod: kept"
    counters = masq_counters(pod.node.netns)
    assert counters["pod to outside"] >= 1 and counters["pod to outside v6"] >= 1
    assert counters["pod to cluster v6"] >= 1


def test_dual_stack_host_gw(cluster: Cluster) -> None:
    cluster.start_agents(DUAL_HOST_GW)
    assert unreachable_pairs(cluster.pods) == []
    assert unreachable_pairs(cluster.pods, version=6) == []
    n1, n2 = cluster.nodes
    agent = cluster.agents["n1"]
    eth0 = get_link(agent.rtnl, n1.underlay_if).index
    assert kernel_entries(agent) == Entries(
        routes=frozenset(
            {
                GatewayRoute(pod_cidr(n2), n2.ip, eth0),
                GatewayRoute(pod_cidr_v6(n2), underlay_v6(n2).ip, eth0),
            }
        )
    )
    annotations = agent.lease.annotations()
    assert annotations["flannel.alpha.coreos.com/backend-v6-data"] == "null"
    assert "FLANNEL_MTU=1500" in subnet_env(agent)


def test_ipv6_only_vxlan(cluster: Cluster) -> None:
    cluster.start_agents(V6_ONLY_VXLAN)
    assert unreachable_pairs(cluster.pods, version=6) == []
    agent = cluster.agents["n1"]
    assert find_link(agent.rtnl, "flannel.1") is None
    assert [r for r in list_routes(agent.rtnl, version=4) if r.dst.prefixlen == 64] == []
    assert subnet_env(agent) == [
        "FLANNEL_IPV6_NETWORK=fd00:10:244::/56",
        "FLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64",
        "FLANNEL_MTU=1430",
        "FLANNEL_IPMASQ=true",
    ]
    annotations = agent.lease.annotations()
    assert "flannel.alpha.coreos.com/backend-data" not in annotations
    assert "flannel.alpha.coreos.com/public-ip" not in annotations
    assert set(masq_counters(cluster.nodes[0].netns)) == {
        f"{rule} v6"
        for rule in (
            "kube-proxy marked",
            "pod to cluster",
            "cluster to pod",
            "outside to pod",
            "pod to outside",
            "host to pods",
            "forward from cluster",
            "forward to cluster",
        )
    }
    assert isinstance(agent.lease.public_ipv6, IPv6Address)


def test_the_loop_waits_for_a_podcidr_of_every_enabled_family() -> None:
    """A dual-stack config waits until the node has both (as flannel's lease needs both);
    an IPv6-only one takes the IPv6 podCIDR and leaves the IPv4 one alone."""
    source = FakeNodes()
    source.put("n1", pod_cidrs=["10.244.1.0/24"])
    settings = AgentSettings(node="n1", underlay="eth0", subnet_file="/nonexistent", poll=0.01)
    stop = threading.Event()
    dual = AgentLoop(source, DUAL_VXLAN, settings)
    waiting = threading.Thread(target=lambda: found.append(dual.wait_for_pod_cidr(stop)))
    found: list[object] = []
    waiting.start()
    try:
        time.sleep(0.1)  # it lists, sees no IPv6 podCIDR and watches
        assert found == []
        source.put("n1", pod_cidrs=["10.244.1.0/24", "fd00:10:244:1::/64"])
        waiting.join(timeout=10)
    finally:
        stop.set()
        waiting.join(timeout=10)
    assert found == [(IPv4Network("10.244.1.0/24"), IPv6Network("fd00:10:244:1::/64"))]
    v6_only = AgentLoop(source, V6_ONLY_VXLAN, settings)
    assert v6_only.wait_for_pod_cidr(threading.Event()) == (None, IPv6Network("fd00:10:244:1::/64"))
