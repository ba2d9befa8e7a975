"""A small cluster for agent tests: lab nodes, each with a cni0 bridge and "pods".

The pods are made here with podnet.netlink directly (netns + veth on cni0 + address +
default route), not with the bridge plugin, so these tests depend on the agent alone.
"""

from __future__ import annotations

import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from podnet.agent import Entries, Lease, NetworkConfig, NodeNetwork, NodeSettings
from podnet.lab import LabNode, Underlay, add_node, build, teardown
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    add_address,
    add_default_route,
    create_bridge_up,
    create_netns,
    create_veth_pair,
    get_link,
    run_in_netns,
    set_loopback_up,
    set_master,
)

CLUSTER_NETWORK = IPv4Network("10.244.0.0/16")
VXLAN = NetworkConfig.from_dict({"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})


def pod_cidr(node: LabNode) -> IPv4Network:
    return IPv4Network(f"10.244.{node.index + 1}.0/24")


@dataclass(frozen=True)
class Pod:
    name: str
    node: LabNode
    netns: str
    ip: IPv4Address


@dataclass
class Cluster:
    lab: str
    netns_dir: str
    state_dir: str
    underlay: Underlay
    nodes: list[LabNode]
    pods: list[Pod] = field(default_factory=list)
    agents: dict[str, NodeNetwork] = field(default_factory=dict)

    @classmethod
    def build(cls, lab: str, netns_dir: str, state_dir: str, count: int) -> Cluster:
        underlay, nodes = build(lab, [f"n{i + 1}" for i in range(count)], netns_dir=netns_dir)
        cluster = cls(lab, netns_dir, state_dir, underlay, nodes)
        try:
            for node in nodes:
                cluster.prepare_node(node)
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def prepare_node(self, node: LabNode, pods: int = 2) -> None:
        """cni0 with the node's gateway address, and `pods` pods on it."""
        cidr = pod_cidr(node)
        gateway = IPv4Interface(f"{cidr.network_address + 1}/{cidr.prefixlen}")
        with Rtnl.open(node.netns) as host:
            bridge = create_bridge_up(host, "cni0")
            add_address(host, bridge.index, gateway)
        for j in range(pods):
            self.add_pod(node, f"p{j}", IPv4Interface(f"{cidr.network_address + 10 + j}/24"))

    def add_pod(self, node: LabNode, name: str, address: IPv4Interface) -> Pod:
        path = os.path.join(self.netns_dir, f"pn-{self.lab}-{node.name}-{name}")
        create_netns(path)
        with Rtnl.open(node.netns) as host:
            veth = create_veth_pair(host, f"veth{node.name}{name}", peer="eth0", peer_netns=path)
            set_master(host, veth.index, get_link(host, "cni0").index)
            host.set_up(veth.index)
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
            eth = get_link(rtnl, "eth0")
            add_address(rtnl, eth.index, address)
            rtnl.set_up(eth.index)
            add_default_route(rtnl, address.network.network_address + 1)
        pod = Pod(f"{node.name}-{name}", node, path, address.ip)
        self.pods.append(pod)
        return pod

    def add_node(self, name: str, index: int) -> LabNode:
        node = add_node(self.underlay, name, index)
        self.nodes.append(node)
        self.prepare_node(node, pods=1)
        return node

    def settings(self, node: LabNode, *, ip_masq: bool = True) -> NodeSettings:
        return NodeSettings(
            node=node.name,
            subnet=pod_cidr(node),
            underlay=node.underlay_if,
            subnet_file=os.path.join(self.state_dir, node.name, "subnet.env"),
            ip_masq=ip_masq,
            netns=node.netns,
        )

    def start_agent(self, node: LabNode, config: NetworkConfig) -> NodeNetwork:
        agent = NodeNetwork.start(self.settings(node), config)
        self.agents[node.name] = agent
        return agent

    def start_agents(self, config: NetworkConfig) -> None:
        for node in self.nodes:
            self.start_agent(node, config)
        leases = [agent.lease for agent in self.agents.values()]
        for agent in self.agents.values():
            outcome = agent.on_snapshot(leases)
            assert outcome.errors == []

    def stop_agent(self, name: str) -> None:
        self.agents.pop(name).close()

    def destroy(self) -> None:
        for name in list(self.agents):
            self.stop_agent(name)
        teardown(self.lab, netns_dir=self.netns_dir)


def ping(netns: str, ip: IPv4Address) -> bool:
    done = subprocess.run(
        ["nsenter", f"--net={netns}", "ping", "-c", "1", "-W", "2", "-q", str(ip)],
        capture_output=True,
    )
    return done.returncode == 0


def unreachable_pairs(pods: list[Pod]) -> list[tuple[str, str]]:
    """Every (from, to) pod pair that a real ping does not get through, same node or not."""
    pairs = [(a, b) for a in pods for b in pods if a is not b]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: ping(pair[0].netns, pair[1].ip), pairs))
    return [(a.name, b.name) for (a, b), ok in zip(pairs, results, strict=True) if not ok]


def udp_source_seen(
    sender_netns: str, receiver_netns: str, receiver_ip: IPv4Address, port: int = 40000
) -> IPv4Address | None:
    """Send one UDP datagram from a namespace and report the source address the receiver
    sees (None if nothing arrives): tells masqueraded traffic from untouched."""

    def udp() -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    with run_in_netns(receiver_netns, udp) as listener, run_in_netns(sender_netns, udp) as sender:
        listener.bind(("0.0.0.0", port))
        listener.settimeout(3)
        sender.sendto(b"hello", (str(receiver_ip), port))
        try:
            _, (source, _) = listener.recvfrom(64)
        except TimeoutError:
            return None
    return IPv4Address(source)


def vxlan_triples(device: int, others: list[Lease]) -> Entries:
    """What flannel programs on one node for the other nodes' leases."""
    entries = Entries()
    for lease in others:
        assert lease.backend_data is not None
        vtep = lease.subnet.network_address
        mac = lease.backend_data.vtep_mac
        entries = entries | Entries(
            routes=frozenset({GatewayRoute(lease.subnet, vtep, device, onlink=True)}),
            neighbours=frozenset({Neighbour(device, vtep, mac)}),
            fdb=frozenset({FdbEntry(device, mac, lease.public_ip)}),
        )
    return entries
