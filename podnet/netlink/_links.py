"""Network devices: look up, create (bridge, veth), change, delete; bridge port flags
and port VLANs."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any

from podnet.netlink._rtnl import LinkNotFound, NetlinkError, Rtnl

IFF_UP = 0x1
IFF_PROMISC = 0x100
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
AF_BRIDGE = 7
RTEXT_FILTER_BRVLAN = 0x2


@dataclass(frozen=True)
class Link:
    """What podnet needs to know about a network device."""

    index: int
    name: str
    kind: str  # "bridge", "veth", ... ("" for devices without link info, like lo)
    mac: str
    mtu: int
    admin_up: bool
    oper_state: str  # "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...
    promisc: bool
    master: int  # index of the bridge it is attached to, 0 when none
    peer_index: int  # veth: the peer's index, valid in the peer's namespace; else 0
    peer_in_other_netns: bool  # veth: the peer lives in another namespace


def _link_from(msg: Any) -> Link:
    flags = int(msg["flags"])
    return Link(
        index=int(msg["index"]),
        name=str(msg.get_attr("IFLA_IFNAME")),
        kind=str(msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or ""),
        mac=str(msg.get_attr("IFLA_ADDRESS") or ""),
        mtu=int(msg.get_attr("IFLA_MTU") or 0),
        admin_up=bool(flags & IFF_UP),
        oper_state=str(msg.get_attr("IFLA_OPERSTATE") or "UNKNOWN"),
        promisc=bool(flags & IFF_PROMISC),
        master=int(msg.get_attr("IFLA_MASTER") or 0),
        peer_index=int(msg.get_attr("IFLA_LINK") or 0),
        peer_in_other_netns=msg.get_attr("IFLA_LINK_NETNSID") is not None,
    )


def get_link(nl: Rtnl, name: str) -> Link:
    """The device called `name`; LinkNotFound when there is none."""
    try:
        msgs = nl.call(f"look up link {name!r}", "link", "get", ifname=name)
    except NetlinkError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            raise LinkNotFound(errno.ENODEV, f"link {name!r} not found") from exc
        raise
    return _link_from(msgs[0])


def find_link(nl: Rtnl, name: str) -> Link | None:
    try:
        return get_link(nl, name)
    except LinkNotFound:
        return None


def get_link_by_index(nl: Rtnl, index: int) -> Link:
    try:
        msgs = nl.call(f"look up link #{index}", "link", "get", index=index)
    except NetlinkError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            raise LinkNotFound(errno.ENODEV, f"link #{index} not found") from exc
        raise
    return _link_from(msgs[0])


def list_links(nl: Rtnl, *, master: int | None = None) -> list[Link]:
    """Every device of the namespace, or only the ports of the bridge `master`."""
    links = [_link_from(m) for m in nl.dump("list links", "link")]
    if master is not None:
        links = [link for link in links if link.master == master]
    return links


def create_bridge(nl: Rtnl, name: str, *, mtu: int = 0, vlan_filtering: bool = False) -> None:
    """Create a bridge; an existing device of that name raises NetlinkError(EEXIST)."""
    spec: dict[str, Any] = {"ifname": name, "kind": "bridge"}
    if mtu:
        spec["mtu"] = mtu
    if vlan_filtering:
        spec["br_vlan_filtering"] = 1
    nl.call(f"create bridge {name!r}", "link", "add", **spec)


def create_veth(
    nl: Rtnl,
    name: str,
    *,
    peer_name: str,
    peer_netns: str,
    mtu: int = 0,
    mac: str = "",
) -> None:
    """Create a veth pair with `name` in this handle's namespace and its peer created
    directly in the namespace at path `peer_netns` (no move, no rename afterwards).
    Either name being taken raises NetlinkError(EEXIST)."""
    fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer: dict[str, Any] = {"ifname": peer_name, "net_ns_fd": fd}
        spec: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer}
        if mtu:
            spec["mtu"] = mtu
            peer["mtu"] = mtu
        if mac:
            spec["address"] = mac
        nl.call(f"create veth {name!r}", "link", "add", **spec)
    finally:
        os.close(fd)


def set_link(
    nl: Rtnl,
    index: int,
    *,
    up: bool | None = None,
    mtu: int | None = None,
    master: int | None = None,
    mac: str | None = None,
) -> None:
    spec: dict[str, Any] = {}
    if up is not None:
        spec["state"] = "up" if up else "down"
    if mtu is not None:
        spec["mtu"] = mtu
    if master is not None:
        spec["master"] = master
    if mac is not None:
        spec["address"] = mac
    if spec:
        nl.call(f"change link #{index}", "link", "set", index=index, **spec)


def set_promisc(nl: Rtnl, index: int, on: bool) -> None:
    flags = IFF_PROMISC if on else 0
    nl.call(
        f"set promiscuous mode of link #{index}",
        "link",
        "set",
        index=index,
        flags=flags,
        change=IFF_PROMISC,
    )


def set_bridge_port(
    nl: Rtnl, index: int, *, hairpin: bool | None = None, isolated: bool | None = None
) -> None:
    """Port flags of a device attached to a bridge: hairpin (IFLA_BRPORT_MODE), isolated."""
    spec: dict[str, Any] = {}
    if hairpin is not None:
        spec["mode"] = int(hairpin)
    if isolated is not None:
        spec["isolated"] = int(isolated)
    if spec:
        nl.call(f"set bridge port flags of link #{index}", "brport", "set", index=index, **spec)


def add_port_vlan(nl: Rtnl, index: int, vid: int, *, pvid: bool, untagged: bool) -> None:
    flags = (BRIDGE_VLAN_INFO_PVID if pvid else 0) | (BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0)
    nl.call(
        f"add vlan {vid} to bridge port #{index}",
        "vlan_filter",
        "add",
        index=index,
        vlan_info={"vid": vid, "flags": flags},
    )


def port_vlans(nl: Rtnl, index: int) -> list[int]:
    """The VLAN ids configured on a bridge port."""
    vids: list[int] = []
    # AF_BRIDGE link dump with RTEXT_FILTER_BRVLAN: one message per port, VLANs inside.
    msgs = nl.dump(
        f"list vlans of bridge port #{index}",
        "link",
        family=AF_BRIDGE,
        ext_mask=RTEXT_FILTER_BRVLAN,
    )
    for msg in msgs:
        spec = msg.get_attr("IFLA_AF_SPEC")
        if int(msg["index"]) != index or spec is None:
            continue
        for name, value in spec["attrs"]:
            if name == "IFLA_BRIDGE_VLAN_INFO":
                vids.append(int(value["vid"]))
    return vids


def delete_port_vlan(nl: Rtnl, index: int, vid: int) -> None:
    nl.call(
        f"remove vlan {vid} from bridge port #{index}",
        "vlan_filter",
        "del",
        index=index,
        vlan_info={"vid": vid},
    )


def delete_link(nl: Rtnl, index: int) -> None:
    """Delete a device; one already gone raises LinkNotFound."""
    nl.call(f"delete link #{index}", "link", "del", index=index)
