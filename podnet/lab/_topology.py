"""The lab's machines: nodes are network namespaces on a shared underlay.

    pn-<lab>-ul        the "switch": a bridge br0, one port per node; br0 has 192.0.2.1,
                       the control plane's address (store, nodeipam controller); with a
                       second underlay, a bridge br1 (192.0.2.129) as well
    pn-<lab>-<node>    a node: eth0 (veth to br0) 192.0.2.<10+i>/25, ip_forward=1; with a
                       second underlay, eth1 (veth to br1) 192.0.2.<138+i>/25 (multi-NIC
                       nodes, for the agents' interface selection)

Everything a lab creates lives in namespaces named `pn-<lab>-...`, so `teardown` can find
all of it by name alone (after a crash nothing else is known) and removing the namespaces
removes every link, address, route and rule inside them. Lab names are lowercase letters
and digits only, so that one lab's prefix can never match another lab's namespaces.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from podnet.netlink import (
    DEFAULT_NETNS_DIR,
    Rtnl,
    add_address,
    create_bridge_up,
    create_netns,
    create_veth_pair,
    delete_netns,
    find_link,
    get_link,
    set_loopback_up,
    set_master,
    write_sysctl,
)

# TEST-NET-1 (never routed anywhere), in two halves: the underlay, and a second one
UNDERLAY_NETWORK = IPv4Network("192.0.2.0/25")
SECOND_UNDERLAY_NETWORK = IPv4Network("192.0.2.128/25")
FIRST_NODE_HOST = 10
# The switch namespace doubles as the control-plane host: the store and the nodeipam
# controller of a lab run there, reachable from every node over the underlay.
CONTROL_PLANE = IPv4Interface(
    f"{UNDERLAY_NETWORK.network_address + 1}/{UNDERLAY_NETWORK.prefixlen}"
)
SWITCH = "br0"
NODE_UNDERLAY_IF = "eth0"
SECOND_SWITCH = "br1"
NODE_SECOND_UNDERLAY_IF = "eth1"
UNDERLAY_SUFFIX = "ul"

_LAB_NAME = re.compile(r"^[a-z0-9]{1,16}$")
_NODE_NAME = re.compile(r"^[a-z0-9]{1,12}$")  # the switch port is "v-<node>": 15 chars max


class TopologyError(ValueError):
    """A lab or node name or index that cannot be used."""


@dataclass(frozen=True)
class LabNode:
    name: str
    index: int
    netns: str
    address: IPv4Interface
    underlay_if: str = NODE_UNDERLAY_IF

    @property
    def ip(self) -> IPv4Address:
        return self.address.ip


@dataclass(frozen=True)
class Underlay:
    lab: str
    netns_dir: str
    netns: str  # the switch's namespace


def lab_prefix(lab: str) -> str:
    return f"pn-{lab}-"


def node_address(index: int, network: IPv4Network = UNDERLAY_NETWORK) -> IPv4Interface:
    """Node i's address on an underlay: the network's 10+i-th."""
    host = FIRST_NODE_HOST + index
    last = network.num_addresses - 2  # below the broadcast address
    if not 0 <= index or host > last:
        raise TopologyError(f"node index {index} is out of range (0..{last - FIRST_NODE_HOST})")
    return IPv4Interface(f"{network.network_address + host}/{network.prefixlen}")


def second_underlay_address(index: int) -> IPv4Interface:
    return node_address(index, SECOND_UNDERLAY_NETWORK)


def _switch_address(network: IPv4Network) -> IPv4Interface:
    return IPv4Interface(f"{network.network_address + 1}/{network.prefixlen}")


def _check_lab(lab: str) -> None:
    if not _LAB_NAME.match(lab):
        raise TopologyError(f"lab name {lab!r}: use 1-16 lowercase letters and digits")


def create_underlay(
    lab: str, *, netns_dir: str = DEFAULT_NETNS_DIR, second: bool = False
) -> Underlay:
    """The switch namespace with its bridge, up, carrying the control-plane address; with
    `second`, a second bridge for a second underlay segment (every node joins both)."""
    _check_lab(lab)
    path = os.path.join(netns_dir, lab_prefix(lab) + UNDERLAY_SUFFIX)
    create_netns(path)
    try:
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
            switch = create_bridge_up(rtnl, SWITCH)
            add_address(rtnl, switch.index, CONTROL_PLANE)
            if second:
                switch = create_bridge_up(rtnl, SECOND_SWITCH)
                add_address(rtnl, switch.index, _switch_address(SECOND_UNDERLAY_NETWORK))
    except BaseException:
        delete_netns(path)
        raise
    return Underlay(lab=lab, netns_dir=netns_dir, netns=path)


def add_node(underlay: Underlay, name: str, index: int) -> LabNode:
    """A node namespace plugged into the switch, with its underlay address and forwarding on;
    into the second switch as well when the lab has one."""
    if not _NODE_NAME.match(name) or name == UNDERLAY_SUFFIX:
        raise TopologyError(f"node name {name!r}: use 1-12 lowercase letters and digits")
    ports = [(SWITCH, f"v-{name}", NODE_UNDERLAY_IF, node_address(index))]
    path = os.path.join(underlay.netns_dir, lab_prefix(underlay.lab) + name)
    create_netns(path)
    try:
        with Rtnl.open(underlay.netns) as switch:
            if find_link(switch, SECOND_SWITCH) is not None:
                ports.append(
                    (
                        SECOND_SWITCH,
                        f"w-{name}",
                        NODE_SECOND_UNDERLAY_IF,
                        second_underlay_address(index),
                    )
                )
            for bridge, port_name, node_if, _ in ports:
                port = create_veth_pair(switch, port_name, peer=node_if, peer_netns=path)
                set_master(switch, port.index, get_link(switch, bridge).index)
                switch.set_up(port.index)
        with Rtnl.open(path) as rtnl:
            set_loopback_up(rtnl)
            for _, _, node_if, address in ports:
                eth = get_link(rtnl, node_if)
                add_address(rtnl, eth.index, address)
                rtnl.set_up(eth.index)
        write_sysctl(path, {"net.ipv4.ip_forward": 1})
    except BaseException:
        delete_netns(path)  # takes the veth pair with it
        raise
    return LabNode(name=name, index=index, netns=path, address=ports[0][3])


def remove_node(underlay: Underlay, node: LabNode) -> None:
    """Unplug a node from the switch, then delete its namespace. (The namespace alone would
    take the veth pair with it, but the kernel dismantles namespaces asynchronously, and a
    node that has left must be gone from the switch when this returns.)"""
    with Rtnl.open(underlay.netns) as switch:
        for name in (f"v-{node.name}", f"w-{node.name}"):
            port = find_link(switch, name)
            if port is not None:
                switch.delete_link(port.index)
    delete_netns(node.netns)


def build(
    lab: str,
    node_names: Sequence[str],
    *,
    netns_dir: str = DEFAULT_NETNS_DIR,
    second_underlay: bool = False,
) -> tuple[Underlay, list[LabNode]]:
    """A switch and one node per name (node i gets 192.0.2.<10+i>, and 192.0.2.<138+i> on
    the second underlay); on any failure everything made so far is removed again."""
    underlay = create_underlay(lab, netns_dir=netns_dir, second=second_underlay)
    try:
        nodes = [add_node(underlay, name, i) for i, name in enumerate(node_names)]
    except BaseException:
        teardown(lab, netns_dir=netns_dir)
        raise
    return underlay, nodes


def lab_namespaces(lab: str, *, netns_dir: str = DEFAULT_NETNS_DIR) -> list[str]:
    """Every namespace file of the lab, by name."""
    _check_lab(lab)
    try:
        names = os.listdir(netns_dir)
    except FileNotFoundError:
        return []
    prefix = lab_prefix(lab)
    return sorted(os.path.join(netns_dir, n) for n in names if n.startswith(prefix))


def teardown(lab: str, *, netns_dir: str = DEFAULT_NETNS_DIR) -> list[str]:
    """Delete every namespace of the lab, and so everything inside; returns what it
    removed. Needs no state, so it works after a crash, and a second run finds nothing."""
    removed = []
    for path in lab_namespaces(lab, netns_dir=netns_dir):
        delete_netns(path)
        removed.append(path)
    return removed
