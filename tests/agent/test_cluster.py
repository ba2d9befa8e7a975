"""The agent end to end on a 3-node lab: real pods, real packets, real kernel tables.

Leases are handed to each node's agent by hand (the store comes later); everything below
the lease list is the real thing: vxlan device, neighbour/FDB/route triples, host-gw
routes, nftables masquerade, subnet.env.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from podnet.agent import (
    ROUTE_PROTO,
    Entries,
    Lease,
    NetworkConfig,
    NodeNetwork,
    RtnlTables,
    added,
    masq_counters,
    removed,
    vtep_mac,
)
from podnet.lab import add_node
from podnet.netlink import GatewayRoute, Rtnl, find_link, get_link
from tests.agent.cluster import (
    VXLAN,
    Cluster,
    ipv4,
    udp_source_seen,
    unreachable_pairs,
    vxlan_triples,
)

pytestmark = pytest.mark.root

HOST_GW = NetworkConfig.from_dict({"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}})
DIRECT = NetworkConfig.from_dict(
    {"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "DirectRouting": True}}
)


@pytest.fixture
def cluster(tmp_path):
    lab = "a" + uuid.uuid4().hex[:10]
    netns_dir = tmp_path / "netns"
    netns_dir.mkdir()
    made = Cluster.build(lab, str(netns_dir), str(tmp_path / "state"), 3)
    try:
        yield made
    finally:
        made.destroy()


def kernel_entries(agent: NodeNetwork) -> Entries:
    return RtnlTables(agent.rtnl).read(agent.backend.owned_devices)


def others(cluster: Cluster, name: str) -> list[Lease]:
    return [a.lease for n, a in cluster.agents.items() if n != name]


def assert_triples_match(cluster: Cluster) -> None:
    for name, agent in cluster.agents.items():
        (device,) = agent.backend.owned_devices
        assert kernel_entries(agent) == vxlan_triples(device, others(cluster, name)), name


def test_vxlan_every_pod_reaches_every_other_pod(cluster) -> None:
    cluster.start_agents(VXLAN)
    assert unreachable_pairs(cluster.pods) == []
    assert_triples_match(cluster)
    n1 = cluster.agents["n1"]
    assert n1.lease.annotations() == {
        "flannel.alpha.coreos.com/kube-subnet-manager": "true",
        "flannel.alpha.coreos.com/backend-type": "vxlan",
        "flannel.alpha.coreos.com/backend-data": (f'{{"VNI":1,"VtepMAC":"{vtep_mac("n1", 1)}"}}'),
        "flannel.alpha.coreos.com/public-ip": "192.0.2.10",
    }
    with open(n1.settings.subnet_file) as handle:
        assert handle.read() == (
            "FLANNEL_NETWORK=10.244.0.0/16\n"
            "FLANNEL_SUBNET=10.244.1.1/24\n"
            "FLANNEL_MTU=1450\n"
            "FLANNEL_IPMASQ=true\n"
        )
    assert os.stat(n1.settings.subnet_file).st_mode & 0o777 == 0o644
    with Rtnl.open(cluster.nodes[0].netns) as rtnl:
        dev = get_link(rtnl, "flannel.1")
        assert (dev.mtu, dev.mac, dev.admin_up) == (1450, vtep_mac("n1", 1), True)


def test_a_node_joins_and_leaves(cluster) -> None:
    cluster.start_agents(VXLAN)
    n4 = cluster.add_node("n4", 3)
    joined = cluster.start_agent(n4, VXLAN)
    assert joined.on_snapshot([a.lease for a in cluster.agents.values()]).errors == []
    for name, agent in cluster.agents.items():
        if name != "n4":
            assert agent.on_events([added(joined.lease)]).errors == []
    assert_triples_match(cluster)
    assert unreachable_pairs([cluster.pods[0], cluster.pods[-1]]) == []

    gone = joined.lease
    cluster.stop_agent("n4")
    for agent in cluster.agents.values():
        outcome = agent.on_events([removed(gone)])
        assert outcome.errors == []
        assert outcome.changes == 3  # its route, neighbour and FDB entry
    assert_triples_match(cluster)


def test_reconcile_cleans_up_after_a_node_deleted_while_the_agent_was_down(cluster) -> None:
    cluster.start_agents(VXLAN)
    n1 = cluster.agents["n1"]
    device_before = n1.backend.owned_devices
    before = kernel_entries(n1)

    # n1's agent stops; while it is down n3 is deleted and only the others hear of it
    cluster.stop_agent("n1")
    n3_lease = cluster.agents["n3"].lease
    cluster.stop_agent("n3")
    cluster.agents["n2"].on_events([removed(n3_lease)])
    with Rtnl.open(cluster.nodes[0].netns) as rtnl:
        assert RtnlTables(rtnl).read(device_before) == before, "a stopped agent flushes nothing"

    restarted = cluster.start_agent(cluster.nodes[0], VXLAN)
    assert restarted.backend.owned_devices == device_before, "the device is reused"
    outcome = restarted.on_snapshot([a.lease for a in cluster.agents.values()])
    assert outcome.errors == []
    assert n3_lease.subnet in {r.dst for r in outcome.plan.delete_routes}
    assert_triples_match(cluster)


def test_reconcile_re_adds_what_was_deleted_and_leaves_foreign_routes(cluster) -> None:
    cluster.start_agents(VXLAN)
    n1 = cluster.agents["n1"]
    netns = cluster.nodes[0].netns
    run = ["nsenter", f"--net={netns}", "ip"]
    subprocess.run([*run, "route", "del", "10.244.2.0/24"], check=True)
    subprocess.run([*run, "neigh", "del", "10.244.3.0", "dev", "flannel.1"], check=True)
    # a leftover of ours for a subnet no node has, and someone else's route
    subprocess.run(
        [*run, "route", "add", "10.244.99.0/24", "via", "192.0.2.99", "proto", str(ROUTE_PROTO)],
        check=True,
    )
    subprocess.run([*run, "route", "add", "10.244.98.0/24", "via", "192.0.2.98"], check=True)
    nft = ["nsenter", f"--net={netns}", "nft"]
    subprocess.run([*nft, "flush", "chain", "ip", "podnet-agent", "postrouting"], check=True)

    outcome = n1.reconcile()
    assert len(masq_counters(netns)) == 8, "the flushed masquerade rules are back"
    assert outcome.errors == []
    assert [str(r.dst) for r in outcome.plan.replace_routes] == ["10.244.2.0/24"]
    assert [str(n.ip) for n in outcome.plan.replace_neighbours] == ["10.244.3.0"]
    assert [str(r.dst) for r in outcome.plan.delete_routes] == ["10.244.99.0/24"]
    assert_triples_match(cluster)
    routes = subprocess.run([*run, "route"], capture_output=True, text=True, check=True).stdout
    assert "10.244.98.0/24 via 192.0.2.98" in routes
    assert n1.reconcile().changes == 0
    assert unreachable_pairs([cluster.pods[0], cluster.pods[2], cluster.pods[4]]) == []


def test_host_gw_every_pod_reaches_every_other_pod(cluster) -> None:
    cluster.start_agents(HOST_GW)
    assert unreachable_pairs(cluster.pods) == []
    for name, agent in cluster.agents.items():
        eth0 = get_link(agent.rtnl, "eth0").index
        assert kernel_entries(agent) == Entries(
            routes=frozenset(
                GatewayRoute(lease.key, ipv4(lease), eth0) for lease in others(cluster, name)
            )
        )
        assert agent.backend.mtu == 1500
        with Rtnl.open(agent.settings.netns) as rtnl:
            assert find_link(rtnl, "flannel.1") is None


def test_vxlan_direct_routing_skips_encapsulation_on_the_same_l2(cluster) -> None:
    cluster.start_agents(DIRECT)
    assert unreachable_pairs(cluster.pods[:3]) == []
    n2 = cluster.agents["n2"]
    eth0 = get_link(n2.rtnl, "eth0").index
    assert kernel_entries(n2) == Entries(
        routes=frozenset(
            {
                GatewayRoute(IPv4Network("10.244.1.0/24"), IPv4Address("192.0.2.10"), eth0),
                GatewayRoute(IPv4Network("10.244.3.0/24"), IPv4Address("192.0.2.12"), eth0),
            }
        )
    )


def test_masquerade_outside_the_cluster_only(cluster) -> None:
    cluster.start_agents(VXLAN)
    outside = add_node(cluster.underlay, "ext", 110)  # 192.0.2.120, no route to pods
    pod, remote_pod = cluster.pods[0], cluster.pods[2]
    assert pod.node.name == "n1" and remote_pod.node.name == "n2"

    seen = udp_source_seen(remote_pod.netns, outside.netns, outside.ip)
    assert seen == IPv4Address("192.0.2.11"), "pod traffic leaving the cluster is masqueraded"
    seen = udp_source_seen(pod.netns, remote_pod.netns, remote_pod.ip)
    assert seen == pod.ip, "pod-to-pod traffic keeps the pod's address"

    assert masq_counters(cluster.nodes[1].netns)["pod to outside"] >= 1
    assert masq_counters(cluster.nodes[0].netns)["pod to cluster"] >= 1


def test_subnet_env_and_masq_rules_follow_the_settings(cluster) -> None:
    node = cluster.nodes[0]
    settings = cluster.settings(node, ip_masq=False)
    with NodeNetwork.start(settings, HOST_GW):
        with open(settings.subnet_file) as handle:
            assert handle.read() == (
                "FLANNEL_NETWORK=10.244.0.0/16\n"
                "FLANNEL_SUBNET=10.244.1.1/24\n"
                "FLANNEL_MTU=1500\n"
                "FLANNEL_IPMASQ=false\n"
            )
        assert set(masq_counters(node.netns)) == {"forward from cluster", "forward to cluster"}


def test_a_subnet_outside_the_cluster_network_is_refused(cluster) -> None:
    settings = replace(cluster.settings(cluster.nodes[0]), subnet=IPv4Network("10.99.1.0/24"))
    with pytest.raises(ValueError, match="not inside the cluster network"):
        NodeNetwork.start(settings, VXLAN)
    assert not os.path.exists(settings.subnet_file)


def test_without_the_agent_pods_reach_only_their_own_node(cluster) -> None:
    """The control for every reachability test above: the lab alone does not route pods."""
    same_node = [cluster.pods[0], cluster.pods[1]]
    other_node = [cluster.pods[0], cluster.pods[2]]
    assert unreachable_pairs(same_node) == []
    assert unreachable_pairs(other_node) == [("n1-p0", "n2-p0"), ("n2-p0", "n1-p0")]


def test_restarting_an_agent_keeps_its_pods_reachable(cluster) -> None:
    """A pod on n2 pings a pod on n1 every 20 ms while n1's agent stops and starts again:
    nothing is flushed, the device and MAC are kept, so at most a packet or two is lost."""
    cluster.start_agents(VXLAN)
    target, source = cluster.pods[0], cluster.pods[2]
    pinger = subprocess.Popen(
        ["nsenter", f"--net={source.netns}", "ping", "-i", "0.02", "-W", "1", str(target.ip)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)
        cluster.stop_agent("n1")
        restarted = cluster.start_agent(cluster.nodes[0], VXLAN)
        assert restarted.on_snapshot([a.lease for a in cluster.agents.values()]).changes == 0
        time.sleep(0.3)
    finally:
        pinger.send_signal(signal.SIGINT)
        out, _ = pinger.communicate(timeout=5)
    sent, received = (int(n) for n in re.findall(r"(\d+) (?:packets transmitted|received)", out))
    assert sent >= 20
    assert sent - received <= 2, out


def test_a_deleted_vxlan_device_is_recreated_with_the_same_mac(cluster) -> None:
    cluster.start_agents(VXLAN)
    netns = cluster.nodes[0].netns
    subprocess.run(["nsenter", f"--net={netns}", "ip", "link", "del", "flannel.1"], check=True)
    assert unreachable_pairs([cluster.pods[2], cluster.pods[0]]) == [
        ("n2-p0", "n1-p0"),
        ("n1-p0", "n2-p0"),
    ]
    outcome = cluster.agents["n1"].reconcile()
    assert outcome.errors == []
    with Rtnl.open(netns) as rtnl:
        assert get_link(rtnl, "flannel.1").mac == vtep_mac("n1", 1)
    assert_triples_match(cluster)
    assert unreachable_pairs([cluster.pods[2], cluster.pods[0]]) == []
