"""Plain plumbing the lab (and tests) build machines from: bridges, veth pairs whose far end
sits in another namespace, addresses, default routes. Nothing here is on a CNI hot path."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Interface

from podnet.netlink._rtnl import LinkInfo, Rtnl, rtnl_errors


def create_bridge(rtnl: Rtnl, name: str, *, mtu: int | None = None) -> LinkInfo:
    """A new bridge `name`, up."""
    extra = {} if mtu is None else {"mtu": mtu}
    with rtnl_errors(f"create bridge {name}"):
        rtnl.ipr.link("add", ifname=name, kind="bridge", **extra)
    info = rtnl.link(name)
    rtnl.set_up(info.index)
    return info


def create_veth(
    rtnl: Rtnl, name: str, *, peer: str, peer_netns: str, mtu: int | None = None
) -> LinkInfo:
    """A veth pair: `name` here, `peer` created directly inside the namespace at `peer_netns`
    (so it never appears in this one). Both ends are left down."""
    extra = {} if mtu is None else {"mtu": mtu}
    fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with rtnl_errors(f"create veth {name} <-> {peer}"):
            rtnl.ipr.link(
                "add",
                ifname=name,
                kind="veth",
                peer={"ifname": peer, "net_ns_fd": fd, **extra},
                **extra,
            )
    finally:
        os.close(fd)
    return rtnl.link(name)


def set_master(rtnl: Rtnl, index: int, master: int) -> None:
    with rtnl_errors(f"attach link #{index} to #{master}"):
        rtnl.ipr.link("set", index=index, master=master)


def add_address(rtnl: Rtnl, index: int, address: IPv4Interface) -> None:
    with rtnl_errors(f"add address {address} to link #{index}"):
        rtnl.ipr.addr(
            "add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen
        )


def add_default_route(rtnl: Rtnl, gateway: IPv4Address) -> None:
    with rtnl_errors(f"add default route via {gateway}"):
        rtnl.ipr.route("add", dst="0.0.0.0/0", gateway=str(gateway))


def set_loopback_up(rtnl: Rtnl) -> None:
    """A fresh namespace has `lo` down; a host or pod needs it to talk to itself."""
    rtnl.set_up(rtnl.link("lo").index)
