"""Routes of a namespace."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from podnet.netlink._rtnl import Rtnl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RT_TABLE_MAIN = 254


@dataclass(frozen=True)
class RouteEntry:
    dst: IPNetwork  # 0.0.0.0/0 for a default route
    gateway: IPAddress | None
    oif: int  # outgoing device index, 0 when none (multipath, blackhole)
    table: int
    priority: int
    scope: int


def _entry_from(msg: Any) -> RouteEntry:
    family = int(msg["family"])
    prefix = int(msg["dst_len"])
    dst_text = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
    gateway = msg.get_attr("RTA_GATEWAY")
    table = msg.get_attr("RTA_TABLE")
    return RouteEntry(
        dst=ipaddress.ip_network(f"{dst_text}/{prefix}", strict=False),
        gateway=ipaddress.ip_address(gateway) if gateway else None,
        oif=int(msg.get_attr("RTA_OIF") or 0),
        table=int(table if table is not None else msg["table"]),
        priority=int(msg.get_attr("RTA_PRIORITY") or 0),
        scope=int(msg["scope"]),
    )


def list_routes(nl: Rtnl, *, version: int, table: int | None = RT_TABLE_MAIN) -> list[RouteEntry]:
    """Unicast routes of one IP version, in one table (None: all tables)."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    routes = [_entry_from(m) for m in nl.dump("list routes", "route", family=family)]
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
    spec: dict[str, Any] = {"dst": str(dst), "oif": oif}
    if gateway is not None:
        spec["gateway"] = str(gateway)
    if priority:
        spec["priority"] = priority
    if table is not None:
        spec["table"] = table
    if scope is not None:
        spec["scope"] = scope
    metrics = {}
    if mtu:
        metrics["mtu"] = mtu
    if advmss:
        metrics["advmss"] = advmss
    if metrics:
        spec["metrics"] = metrics
    via = f" via {gateway}" if gateway is not None else ""
    nl.call(f"add route {dst}{via}", "route", "add", **spec)
