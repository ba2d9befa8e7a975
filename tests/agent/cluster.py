"""A small cluster for agent tests: lab nodes, each with a cni0 bridge and "pods".

The pods are made here with podnet.netlink directly (netns + veth on cni0 + address +
default route), not with the bridge plugin, so these tests depend on the agent alone.
With `ipv6`, every node also gets an IPv6 underlay address (fd00:192:0:2::<10+i>/64) and
IPv6 forwarding, and every pod an IPv6 address in its node's fd00:10:244:<i+1>::/64.
"""

from __future__ import annotations

import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)

from podnet.agent import Entries, Lease, NetworkConfig, NodeNetwork, NodeSettings
from podnet.lab import LabNode, Underlay, add_node, build, teardown
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    add_address,
    add_default_route,
    add_route,
    create_bridge_up,
    create_netns,
    create_veth_pair,
    get_link,
    run_in_netns,
    set_loopback_up,
    set_master,
    write_sysctl,
)

CLUSTER_NETWORK = IPv4Network("10.244.0.0/16")
VXLAN = NetworkConfig.from_dict({"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}})


CLUSTER_NETWORK_V6 = IPv6Network("fd00:10:244::/56")


def pod_cidr(node: LabNode) -> IPv4Network:
    return IPv4Network(f"10.244.{node.index + 1}.0/24")


def pod_cidr_v6(node: LabNode) -> IPv6Network:
    return IPv6Network(f"fd00:10:244:{node.index + 1:x}::/64")


def underlay_v6(node: LabNode) -> IPv6Interface:
    return IPv6Interface(f"fd00:192:0:2::{node.index + 10:x}/64")


@dataclass(frozen=True)
class Pod:
    name: str
    node: LabNode
    netns: str
    ip: IPv4Address
    ip6: IPv6Address | None = None


@dataclass
class Cluster:
    lab: str
    netns_dir: str
    state_dir: str
    underlay: Underlay
    nodes: list[LabNode]
    pods: list[Pod] = field(default_factory=list)
    agents: dict[str, NodeNetwork] = field(default_factory=dict)
    ipv6: bool = False

    @classmethod
    def build(
        cls,
        lab: str,
        netns_dir: str,
        state_dir: str,
        count: int,
        *,
        ipv6: bool = False,
        pods: int = 2,
    ) -> Cluster:
        underlay, nodes = build(lab, [f"n{i + 1}" for i in range(count)], netns_dir=netns_dir)
        cluster = cls(lab, netns_dir, state_dir, underlay, nodes, ipv6=ipv6)
        try:
            for node in nodes:
                cluster.prepare_node(node, pods)
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
            if self.ipv6:
                add_address(
                    host, get_link(host, node.underlay_if).index, underlay_v6(node), nodad=True
                )
                cidr6 = pod_cidr_v6(node)
                gateway6 = IPv6Interface(f"{cidr6.network_address + 1}/{cidr6.prefixlen}")
                add_address(host, bridge.index, gateway6, nodad=True)
        if self.ipv6:
            write_sysctl(node.netns, {"net.ipv6.conf.all.forwarding": 1})
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
            address6 = None
            if self.ipv6:
                cidr6 = pod_cidr_v6(node)
                host_part = int(address.ip) - int(address.network.network_address)
                address6 = IPv6Interface(f"{cidr6.network_address + host_part}/{cidr6.prefixlen}")
                add_address(rtnl, eth.index, address6, nodad=True)
                gateway6 = cidr6.network_address + 1
                add_route(rtnl, IPv6Network("::/0"), oif=eth.index, gateway=gateway6)
        pod = Pod(f"{node.name}-{name}", node, path, address.ip, address6 and address6.ip)
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
            ipv6_subnet=pod_cidr_v6(node) if self.ipv6 else None,
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


def ping(netns: str, ip: IPv4Address | IPv6Address) -> bool:
    # IPv6: a first packet that needs neighbour discovery on fresh links takes about a
    # second (measured here: 1.0 s, then 0.1 ms), in each direction
    wait = "2" if ip.version == 4 else "5"
    done = subprocess.run(
        ["nsenter", f"--net={netns}", "ping", "-c", "1", "-W", wait, "-q", str(ip)],
        capture_output=True,
    )
    return done.returncode == 0


def unreachable_pairs(pods: list[Pod], *, version: int = 4) -> list[tuple[str, str]]:
    """Every (from, to) pod pair that a real ping does not get through, same node or not,
    over IPv4 or IPv6."""
    pairs = [(a, b) for a in pods for b in pods if a is not b]

    def target(pod: Pod) -> IPv4Address | IPv6Address:
        found = pod.ip if version == 4 else pod.ip6
        assert found is not None, f"pod {pod.name} has no IPv{version} address"
        return found

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda pair: ping(pair[0].netns, target(pair[1])), pairs))
    return [(a.name, b.name) for (a, b), ok in zip(pairs, results, strict=True) if not ok]


def udp_source_seen(
    sender_netns: str,
    receiver_netns: str,
    receiver_ip: IPv4Address | IPv6Address,
    port: int = 40000,
) -> IPv4Address | IPv6Address | None:
    """Send one UDP datagram from a namespace and report the source address the receiver
    sees (None if nothing arrives): tells masqueraded traffic from untouched."""
    family = socket.AF_INET if receiver_ip.version == 4 else socket.AF_INET6

    def udp() -> socket.socket:
        return socket.socket(family, socket.SOCK_DGRAM)

    with run_in_netns(receiver_netns, udp) as listener, run_in_netns(sender_netns, udp) as sender:
        listener.bind(("0.0.0.0" if family == socket.AF_INET else "::", port))
        listener.settimeout(3)
        sender.sendto(b"hello", (str(receiver_ip), port))
        try:
            _, (source, *_) = listener.recvfrom(64)
        except TimeoutError:
            return None
    return ip_address(source)


def ipv4(lease: Lease) -> IPv4Address:
    """A lease's IPv4 public address (the tests' leases all have one)."""
    assert lease.public_ip is not None
    return lease.public_ip


def vxlan_triples(device: int, others: list[Lease]) -> Entries:
    """What flannel programs on one node for the other nodes' leases."""
    entries = Entries()
    for lease in others:
        assert lease.backend_data is not None and lease.subnet is not None
        vtep = lease.subnet.network_address
        mac = lease.backend_data.vtep_mac
        entries = entries | Entries(
            routes=frozenset({GatewayRoute(lease.subnet, vtep, device, onlink=True)}),
            neighbours=frozenset({Neighbour(device, vtep, mac)}),
            fdb=frozenset({FdbEntry(device, mac, ipv4(lease))}),
        )
    return entries
