"""A dual-stack lab (`podnet lab up --dual-stack`): IPv6 beside IPv4 from the underlay up.

Every node's underlay interface gets a ULA address next to its 192.0.2.<10+i> one, in the
same /64 on the same switch, and forwards IPv6; the cluster gets a ULA pod network that
nodeipam cuts into a /64 per node and the agents carry as flannel's EnableIPv6 does.
Addresses skip duplicate address detection: the lab hands them out, none can clash, and a
tentative address could not carry the overlay for the first second.
"""

from __future__ import annotations

from ipaddress import IPv6Interface

from podnet.lab._topology import LabNode
from podnet.netlink import Rtnl, add_address, get_link, write_sysctl

UNDERLAY_NETWORK_V6 = "fd00:192:0:2::/64"  # the underlay's 192.0.2.0/24, in ULA space
CLUSTER_CIDR_V6 = "fd00:10:244::/56"  # ULA pods: 256 nodes
NODE_MASK_V6 = 64


def node_address_v6(node: LabNode) -> IPv6Interface:
    """Node i's IPv6 underlay address: fd00:192:0:2::<10+i> (hex), beside 192.0.2.<10+i>."""
    return IPv6Interface(f"fd00:192:0:2::{node.index + 10:x}/64")


def add_ipv6_underlay(node: LabNode) -> None:
    """The node's IPv6 underlay address and IPv6 forwarding."""
    write_sysctl(node.netns, {"net.ipv6.conf.all.forwarding": 1})
    with Rtnl.open(node.netns) as rtnl:
        add_address(rtnl, get_link(rtnl, node.underlay_if).index, node_address_v6(node), nodad=True)
