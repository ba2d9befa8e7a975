"""Plain plumbing the lab (and tests) build machines from: bridges, veth pairs whose far end
sits in another namespace, addresses, default routes. Nothing here is on a CNI hot path."""

from __future__ import annotations

from ipaddress import IPv4Address

from podnet.netlink._links import Link, create_bridge, create_veth, get_link
from podnet.netlink._rtnl import Rtnl, rtnl_errors


def create_bridge_up(rtnl: Rtnl, name: str, *, mtu: int | None = None) -> Link:
    """A new bridge `name`, up."""
    create_bridge(rtnl, name, mtu=mtu or 0)
    info = get_link(rtnl, name)
    rtnl.set_up(info.index)
    return info


def create_veth_pair(
    rtnl: Rtnl, name: str, *, peer: str, peer_netns: str, mtu: int | None = None
) -> Link:
    """A veth pair: `name` here, `peer` created directly inside the namespace at `peer_netns`
    (so it never appears in this one). Both ends are left down."""
    create_veth(rtnl, name, peer_name=peer, peer_netns=peer_netns, mtu=mtu or 0)
    return get_link(rtnl, name)


def set_master(rtnl: Rtnl, index: int, master: int) -> None:
    with rtnl_errors(f"attach link #{index} to #{master}"):
        rtnl.ipr.link("set", index=index, master=master)


def add_default_route(rtnl: Rtnl, gateway: IPv4Address) -> None:
    with rtnl_errors(f"add default route via {gateway}"):
        rtnl.ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))


def set_loopback_up(rtnl: Rtnl) -> None:
    """A fresh namespace has `lo` down; a host or pod needs it to talk to itself."""
    rtnl.set_up(get_link(rtnl, "lo").index)
