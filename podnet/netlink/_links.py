"""Network devices: look up, create (bridge, veth), change, delete; bridge port flags
and port VLANs.

Everything a pod's ADD and DEL does goes through the handle's own socket
(`podnet.netlink._nlmsg`); port VLANs, which only VLAN-tagged bridges use, through pyroute2.
"""

from __future__ import annotations

import errno
import os

from podnet._record import FrozenRecord
from podnet.netlink._nlmsg import (
    IFINFOMSG,
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_DELLINK,
    RTM_GETLINK,
    RTM_NEWLINK,
    RTM_SETLINK,
    attr,
    attr_str,
    attr_u8,
    attr_u32,
    cstr,
    i32,
    ifinfomsg,
    nested,
    parse_attrs,
    u8,
    u32,
)
from podnet.netlink._rtnl import LinkNotFound, Rtnl, raw_errors

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

IFF_UP = 0x1
IFF_PROMISC = 0x100
BRIDGE_VLAN_INFO_PVID = 0x2
BRIDGE_VLAN_INFO_UNTAGGED = 0x4
AF_BRIDGE = 7
RTEXT_FILTER_BRVLAN = 0x2
RTEXT_FILTER_SKIP_STATS = 0x8

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINK = 5
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_NUM_TX_QUEUES = 31
IFLA_NUM_RX_QUEUES = 32
IFLA_LINK_NETNSID = 37
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_BR_VLAN_FILTERING = 7
IFLA_BRPORT_MODE = 4
IFLA_BRPORT_ISOLATED = 33

# IFLA_OPERSTATE values (RFC 2863), named as iproute2 and pyroute2 print them.
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
# Counters are of no use here and make every answer ~1 KiB longer.
_SKIP_STATS = attr_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
_ONE_QUEUE = attr_u32(IFLA_NUM_TX_QUEUES, 1) + attr_u32(IFLA_NUM_RX_QUEUES, 1)
_MISSING = (errno.ENODEV, errno.ENOENT)


class Link(FrozenRecord):
    """What podnet needs to know about a network device."""

    __slots__ = (
        "index",
        "name",
        "kind",
        "mac",
        "mtu",
        "admin_up",
        "oper_state",
        "promisc",
        "master",
        "peer_index",
        "peer_in_other_netns",
    )

    def __init__(
        self,
        index: int,
        name: str,
        kind: str,
        mac: str,
        mtu: int,
        admin_up: bool,
        oper_state: str,
        promisc: bool,
        master: int,
        peer_index: int,
        peer_in_other_netns: bool,
    ) -> None:
        self.index: Final = index
        self.name: Final = name
        self.kind: Final = kind  # "bridge", "veth", ... ("" for devices without link info, like lo)
        self.mac: Final = mac
        self.mtu: Final = mtu
        self.admin_up: Final = admin_up
        self.oper_state: Final = oper_state  # "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...
        self.promisc: Final = promisc
        self.master: Final = master  # index of the bridge it is attached to, 0 when none
        self.peer_index: Final = (
            peer_index  # veth: the peer's index, valid in the peer's namespace; else 0
        )
        self.peer_in_other_netns: Final = (
            peer_in_other_netns  # veth: the peer lives in another namespace
        )


def decode_link(payload: bytes) -> Link:
    """A Link from the payload of an RTM_NEWLINK message."""
    _, _, index, flags, _ = IFINFOMSG.unpack_from(payload)
    attrs = parse_attrs(payload, IFINFOMSG.size)
    info = parse_attrs(attrs[IFLA_LINKINFO]) if IFLA_LINKINFO in attrs else {}
    oper = u8(attrs[IFLA_OPERSTATE]) if IFLA_OPERSTATE in attrs else 0
    return Link(
        index=index,
        name=cstr(attrs.get(IFLA_IFNAME, b"")),
        kind=cstr(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else "",
        mac=attrs[IFLA_ADDRESS].hex(":") if attrs.get(IFLA_ADDRESS) else "",
        mtu=u32(attrs[IFLA_MTU]) if IFLA_MTU in attrs else 0,
        admin_up=bool(flags & IFF_UP),
        oper_state=OPER_STATES[oper] if oper < len(OPER_STATES) else "UNKNOWN",
        promisc=bool(flags & IFF_PROMISC),
        master=u32(attrs[IFLA_MASTER]) if IFLA_MASTER in attrs else 0,
        peer_index=i32(attrs[IFLA_LINK]) if IFLA_LINK in attrs else 0,
        peer_in_other_netns=IFLA_LINK_NETNSID in attrs,
    )


def _get(nl: Rtnl, what: str, body: bytes) -> Link:
    with raw_errors(what, missing=_MISSING):
        return decode_link(nl.nl.query(RTM_GETLINK, body))


def get_link(nl: Rtnl, name: str) -> Link:
    """The device called `name`; LinkNotFound when there is none."""
    body = ifinfomsg() + attr_str(IFLA_IFNAME, name) + _SKIP_STATS
    try:
        return _get(nl, f"look up link {name!r}", body)
    except LinkNotFound:
        raise LinkNotFound(errno.ENODEV, f"link {name!r} not found") from None


def find_link(nl: Rtnl, name: str) -> Link | None:
    try:
        return get_link(nl, name)
    except LinkNotFound:
        return None


def get_link_by_index(nl: Rtnl, index: int) -> Link:
    try:
        return _get(nl, f"look up link #{index}", ifinfomsg(index=index) + _SKIP_STATS)
    except LinkNotFound:
        raise LinkNotFound(errno.ENODEV, f"link #{index} not found") from None


def find_link_by_index(nl: Rtnl, index: int) -> Link | None:
    try:
        return get_link_by_index(nl, index)
    except LinkNotFound:
        return None


def list_links(nl: Rtnl, *, master: int | None = None) -> list[Link]:
    """Every device of the namespace, or only the ports of the bridge `master`."""
    with raw_errors("list links", missing=()):
        payloads = nl.nl.dump(RTM_GETLINK, ifinfomsg() + _SKIP_STATS)
    links = [decode_link(p) for p in payloads]
    if master is not None:
        links = [link for link in links if link.master == master]
    return links


def _change(nl: Rtnl, what: str, msg_type: int, body: bytes, flags: int = 0) -> None:
    with raw_errors(what):
        nl.nl.request(msg_type, body, flags)


def create_bridge(nl: Rtnl, name: str, *, mtu: int = 0, vlan_filtering: bool = False) -> None:
    """Create a bridge; an existing device of that name raises NetlinkError(EEXIST)."""
    data = [nested(IFLA_INFO_DATA, attr_u8(IFLA_BR_VLAN_FILTERING, 1))] if vlan_filtering else []
    body = ifinfomsg() + attr_str(IFLA_IFNAME, name)
    if mtu:
        body += attr_u32(IFLA_MTU, mtu)
    body += nested(IFLA_LINKINFO, attr_str(IFLA_INFO_KIND, "bridge"), *data)
    _change(nl, f"create bridge {name!r}", RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", "").replace("-", ""))


def create_veth(
    nl: Rtnl,
    name: str,
    *,
    peer_name: str,
    peer_netns: str,
    mtu: int = 0,
    mac: str = "",
    peer_mac: str = "",
    up: bool = False,
    master: int = 0,
) -> None:
    """Create a veth pair with `name` in this handle's namespace and its peer created
    directly in the namespace at path `peer_netns` (no move, no rename afterwards). The
    end called `name` can be born up (`up`) and attached to a bridge (`master`), all in
    one request. Either name being taken raises NetlinkError(EEXIST).

    Both ends get one TX and one RX queue, the number a veth uses anyway: asked for none,
    the kernel allocates one per possible CPU, then cuts the queues in use to one, which
    waits for an RCU grace period while holding the lock every netlink change takes (two
    per pair). Measured on a 2-CPU machine: creating a pair 0.64 -> 0.39 ms when idle,
    mean 1.7 -> 0.42 ms with both CPUs busy. (`ethtool -L` cannot add queues later;
    nothing a pod's network does needs them.)"""
    fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer = ifinfomsg() + attr_str(IFLA_IFNAME, peer_name) + attr_u32(IFLA_NET_NS_FD, fd)
        peer += _ONE_QUEUE
        body = ifinfomsg(flags=IFF_UP if up else 0, change=IFF_UP if up else 0)
        body += attr_str(IFLA_IFNAME, name) + _ONE_QUEUE
        if mtu:
            body += attr_u32(IFLA_MTU, mtu)
            peer += attr_u32(IFLA_MTU, mtu)
        if mac:
            body += attr(IFLA_ADDRESS, _mac_bytes(mac))
        if peer_mac:
            peer += attr(IFLA_ADDRESS, _mac_bytes(peer_mac))
        if master:
            body += attr_u32(IFLA_MASTER, master)
        body += nested(
            IFLA_LINKINFO,
            attr_str(IFLA_INFO_KIND, "veth"),
            nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)),
        )
        _change(nl, f"create veth {name!r}", RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)
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
    flags = change = 0
    if up is not None:
        flags, change = (IFF_UP if up else 0), IFF_UP
    attrs = b""
    if mtu is not None:
        attrs += attr_u32(IFLA_MTU, mtu)
    if master is not None:
        attrs += attr_u32(IFLA_MASTER, master)
    if mac is not None:
        attrs += attr(IFLA_ADDRESS, _mac_bytes(mac))
    if change or attrs:
        body = ifinfomsg(index=index, flags=flags, change=change) + attrs
        _change(nl, f"change link #{index}", RTM_SETLINK, body)


def set_promisc(nl: Rtnl, index: int, on: bool) -> None:
    body = ifinfomsg(index=index, flags=IFF_PROMISC if on else 0, change=IFF_PROMISC)
    _change(nl, f"set promiscuous mode of link #{index}", RTM_SETLINK, body)


def set_bridge_port(
    nl: Rtnl, index: int, *, hairpin: bool | None = None, isolated: bool | None = None
) -> None:
    """Port flags of a device attached to a bridge: hairpin (IFLA_BRPORT_MODE), isolated."""
    flags = []
    if hairpin is not None:
        flags.append(attr_u8(IFLA_BRPORT_MODE, int(hairpin)))
    if isolated is not None:
        flags.append(attr_u8(IFLA_BRPORT_ISOLATED, int(isolated)))
    if flags:
        # The bridge reads IFLA_PROTINFO as port attributes only with NLA_F_NESTED set
        # (without it, as the old RSTP port-state byte).
        body = ifinfomsg(family=AF_BRIDGE, index=index) + nested(IFLA_PROTINFO, *flags, flag=True)
        _change(nl, f"set bridge port flags of link #{index}", RTM_SETLINK, body)


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
    _change(nl, f"delete link #{index}", RTM_DELLINK, ifinfomsg(index=index))


def delete_link_named(nl: Rtnl, name: str) -> None:
    """Delete the device called `name` in one request; one already gone raises LinkNotFound."""
    with raw_errors(f"delete link {name!r}", missing=_MISSING):
        nl.nl.request(RTM_DELLINK, ifinfomsg() + attr_str(IFLA_IFNAME, name))
