"""The overlay's VXLAN device (flannel's `flannel.<VNI>`): create it, or keep a compatible one.

Keeping the existing device on restart matters: its neighbour and FDB tables are what keep
pods on other nodes reachable while the agent is away, so a compatible device is reused as
is (MTU and MAC are corrected in place), and only one whose identity differs (VNI, underlay
link, local address, port, learning) is deleted and created again, as flannel's ensureLink.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any

from podnet.netlink._addrs import add_address, delete_address, list_addresses
from podnet.netlink._links import Link, find_link, get_link
from podnet.netlink._rtnl import Rtnl, RtnlError, rtnl_errors

VXLAN_PORT = 8472  # the Linux kernel's historical VXLAN port, flannel's default


@dataclass(frozen=True)
class VxlanSpec:
    name: str
    vni: int
    local: IPv4Address | IPv6Address  # an IPv6 one makes an IPv6 tunnel (flannel-v6.<VNI>)
    underlay_index: int
    mtu: int
    mac: str
    port: int = VXLAN_PORT
    learning: bool = False


@dataclass(frozen=True)
class VxlanAttrs:
    """What identifies an existing VXLAN device, as read back from the kernel."""

    vni: int
    local: IPv4Address | IPv6Address | None
    underlay_index: int | None
    port: int
    learning: bool


def _attrs_of(msg: Any) -> VxlanAttrs:
    data = msg.get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
    local = data.get("IFLA_VXLAN_LOCAL") or data.get("IFLA_VXLAN_LOCAL6")
    return VxlanAttrs(
        vni=data.get("IFLA_VXLAN_ID"),
        local=ipaddress.ip_address(local) if local else None,
        underlay_index=data.get("IFLA_VXLAN_LINK") or None,
        port=data.get("IFLA_VXLAN_PORT"),
        learning=bool(data.get("IFLA_VXLAN_LEARNING")),
    )


def vxlan_incompatibility(existing: VxlanAttrs, spec: VxlanSpec) -> str | None:
    """Why an existing device cannot serve as `spec` (None: it can)."""
    if existing.vni != spec.vni:
        return f"vni {existing.vni} vs {spec.vni}"
    if existing.underlay_index != spec.underlay_index:
        return f"underlay link #{existing.underlay_index} vs #{spec.underlay_index}"
    if existing.local != spec.local:
        return f"local address {existing.local} vs {spec.local}"
    if existing.port != spec.port:
        return f"port {existing.port} vs {spec.port}"
    if existing.learning != spec.learning:
        return f"learning {existing.learning} vs {spec.learning}"
    return None


def read_vxlan(rtnl: Rtnl, name: str) -> VxlanAttrs | None:
    """The VXLAN attributes of link `name`; None when it is missing or not a VXLAN device."""
    try:
        with rtnl_errors(f"look up link {name}"):
            msgs = rtnl.ipr.link("get", ifname=name)
    except RtnlError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise
    if not msgs or msgs[0].get(("IFLA_LINKINFO", "IFLA_INFO_KIND")) != "vxlan":
        return None
    return _attrs_of(msgs[0])


def _create(rtnl: Rtnl, spec: VxlanSpec) -> None:
    with rtnl_errors(f"create vxlan device {spec.name}"):
        rtnl.ipr.link(
            "add",
            ifname=spec.name,
            kind="vxlan",
            address=spec.mac,
            mtu=spec.mtu,
            vxlan_id=spec.vni,
            vxlan_port=spec.port,
            vxlan_learning=int(spec.learning),
            vxlan_link=spec.underlay_index,
            **{"vxlan_local" if spec.local.version == 4 else "vxlan_local6": str(spec.local)},
        )


def ensure_vxlan(rtnl: Rtnl, spec: VxlanSpec) -> Link:
    """Make link `spec.name` a VXLAN device matching `spec`; returns it (not yet up)."""
    existing = find_link(rtnl, spec.name)
    if existing is not None:
        attrs = read_vxlan(rtnl, spec.name)
        reason = "not a vxlan device" if attrs is None else vxlan_incompatibility(attrs, spec)
        if reason is not None:
            rtnl.delete_link(existing.index)
            existing = None
    if existing is None:
        _create(rtnl, spec)
        return get_link(rtnl, spec.name)
    if existing.mtu != spec.mtu:
        rtnl.set_mtu(existing.index, spec.mtu)
    if existing.mac != spec.mac.lower():
        rtnl.set_mac(existing.index, spec.mac)
    return get_link(rtnl, spec.name)


def ipv4_addresses(rtnl: Rtnl, index: int) -> list[IPv4Interface]:
    msgs = rtnl.dump(
        f"dump addresses of link #{index}",
        lambda: rtnl.ipr.addr("dump", family=socket.AF_INET, index=index),
    )
    return [
        IPv4Interface(f"{msg.get('IFA_LOCAL') or msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
        for msg in msgs
        if msg["index"] == index
    ]


def ensure_sole_address(
    rtnl: Rtnl,
    index: int,
    address: IPv4Interface | IPv6Interface,
    within: IPv4Network | IPv6Network,
) -> None:
    """Give link #index `address`, removing any other address it holds inside `within`
    (a previous lease's), as flannel's EnsureV4AddressOnLink / EnsureV6AddressOnLink; others
    are left alone. An IPv6 one skips duplicate address detection: it is the node's own
    lease address, and a tentative address could not be the source of host-to-pod traffic
    for the first second."""
    present = [a.address for a in list_addresses(rtnl, index, version=address.version)]
    for other in present:
        if other != address and other.ip in within:
            delete_address(rtnl, index, other)
    if address not in present:
        add_address(rtnl, index, address, nodad=True)
