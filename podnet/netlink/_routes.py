"""Routes of a namespace (through the handle's own socket, see _nlmsg)."""

from __future__ import annotations

import _socket
import ipaddress

from podnet._record import FrozenRecord
from podnet.netlink._nlmsg import (
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTM_GETROUTE,
    RTM_NEWROUTE,
    RTMSG,
    attr,
    attr_u32,
    nested,
    parse_attrs,
    rtmsg,
    u32,
)
from podnet.netlink._rtnl import Rtnl, raw_errors

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RT_TABLE_COMPAT = 252
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4  # what pyroute2 and `ip route add` put on routes added by hand
RTN_UNICAST = 1
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_METRICS = 8
RTA_TABLE = 15
RTAX_MTU = 2
RTAX_ADVMSS = 8


class RouteEntry(FrozenRecord):
    __slots__ = ("dst", "gateway", "oif", "table", "priority", "scope")

    def __init__(
        self,
        dst: IPNetwork,
        gateway: IPAddress | None,
        oif: int,
        table: int,
        priority: int,
        scope: int,
    ) -> None:
        self.dst: Final = dst  # 0.0.0.0/0 for a default route
        self.gateway: Final = gateway
        self.oif: Final = oif  # outgoing device index, 0 when none (multipath, blackhole)
        self.table: Final = table
        self.priority: Final = priority
        self.scope: Final = scope


def _entry_from(payload: bytes) -> RouteEntry:
    family, dst_len, _, _, header_table, _, scope, _, _ = RTMSG.unpack_from(payload)
    attrs = parse_attrs(payload, RTMSG.size)
    if RTA_DST in attrs:
        dst_text = _socket.inet_ntop(family, attrs[RTA_DST])
    else:
        dst_text = "0.0.0.0" if family == _socket.AF_INET else "::"
    gateway = attrs.get(RTA_GATEWAY)
    return RouteEntry(
        dst=ipaddress.ip_network(f"{dst_text}/{dst_len}", strict=False),
        gateway=ipaddress.ip_address(_socket.inet_ntop(family, gateway)) if gateway else None,
        oif=u32(attrs[RTA_OIF]) if RTA_OIF in attrs else 0,
        table=u32(attrs[RTA_TABLE]) if RTA_TABLE in attrs else header_table,
        priority=u32(attrs[RTA_PRIORITY]) if RTA_PRIORITY in attrs else 0,
        scope=scope,
    )


def list_routes(nl: Rtnl, *, version: int, table: int | None = RT_TABLE_MAIN) -> list[RouteEntry]:
    """Unicast routes of one IP version, in one table (None: all tables)."""
    family = _socket.AF_INET if version == 4 else _socket.AF_INET6
    with raw_errors("list routes", missing=()):
        payloads = nl.nl.dump(RTM_GETROUTE, rtmsg(family=family))
    routes = [_entry_from(p) for p in payloads if p[0] == family]
    return [r for r in routes if table is None or r.table == table]


def add_route(
    nl: Rtnl,
    dst: IPNetwork,
    *,
    oif: int,
    gateway: IPAddress | None = None,
    priority: int = 0,
    table: int | None = None,
    scope: int | None = None,
    mtu: int = 0,
    advmss: int = 0,
) -> None:
    """Add a route; one already present raises NetlinkError(EEXIST)."""
    family = _socket.AF_INET if dst.version == 4 else _socket.AF_INET6
    table = RT_TABLE_MAIN if table is None else table
    body = rtmsg(
        family=family,
        dst_len=dst.prefixlen,
        table=table if table < 256 else RT_TABLE_COMPAT,
        protocol=RTPROT_STATIC,
        scope=scope or 0,
        kind=RTN_UNICAST,
    )
    body += attr_u32(RTA_TABLE, table)
    if dst.prefixlen:
        body += attr(RTA_DST, dst.network_address.packed)
    body += attr_u32(RTA_OIF, oif)
    if gateway is not None:
        body += attr(RTA_GATEWAY, gateway.packed)
    if priority:
        body += attr_u32(RTA_PRIORITY, priority)
    metrics = []
    if mtu:
        metrics.append(attr_u32(RTAX_MTU, mtu))
    if advmss:
        metrics.append(attr_u32(RTAX_ADVMSS, advmss))
    if metrics:
        body += nested(RTA_METRICS, *metrics)
    via = f" via {gateway}" if gateway is not None else ""
    with raw_errors(f"add route {dst}{via}"):
        nl.nl.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)
