"""IPv4 routes in the main table, tagged with a routing protocol number.

The node agent marks every route it installs with its own `proto` number, so that when it
reconciles it can list exactly its own routes and delete the ones no lease wants any more,
and never touch a route someone else made (kernel, DHCP, an administrator).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from podnet.netlink._rtnl import Rtnl, RtnlError, rtnl_errors

RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4


@dataclass(frozen=True, order=True)
class GatewayRoute:
    """`dst` via `gateway` out of link #ifindex; `onlink`: the gateway needs no connected
    route (the overlay's gateway is the remote VTEP address, reachable only through the
    device itself)."""

    dst: IPv4Network
    gateway: IPv4Address
    ifindex: int
    onlink: bool = False


@dataclass(frozen=True)
class RouteLookup:
    """Where the kernel would send a packet: out of link #ifindex, via `gateway` or, when
    it is None, straight to the destination (it is on a directly connected network)."""

    ifindex: int
    gateway: IPv4Address | None
    source: IPv4Address | None = None  # the preferred source address, if the kernel has one


def replace_route(rtnl: Rtnl, route: GatewayRoute, *, proto: int) -> None:
    with rtnl_errors(f"replace route {route.dst} via {route.gateway}"):
        rtnl.ipr.route(
            "replace",
            dst=str(route.dst),
            gateway=str(route.gateway),
            oif=route.ifindex,
            flags=RTNH_F_ONLINK if route.onlink else 0,
            proto=proto,
            table=RT_TABLE_MAIN,
        )


def delete_route(rtnl: Rtnl, route: GatewayRoute, *, proto: int) -> None:
    """Delete a route; a missing one counts as deleted."""
    try:
        with rtnl_errors(f"delete route {route.dst} via {route.gateway}"):
            rtnl.ipr.route(
                "del",
                dst=str(route.dst),
                gateway=str(route.gateway),
                oif=route.ifindex,
                proto=proto,
                table=RT_TABLE_MAIN,
            )
    except RtnlError as exc:
        if exc.errno not in (errno.ESRCH, errno.ENOENT):
            raise


def routes_with_proto(rtnl: Rtnl, proto: int) -> list[GatewayRoute]:
    """Every IPv4 route of the main table tagged `proto` that has a single gateway."""
    msgs = rtnl.dump(
        f"dump routes of proto {proto}",
        lambda: rtnl.ipr.route("dump", family=socket.AF_INET),
    )
    routes = []
    for msg in msgs:
        table = msg.get("RTA_TABLE") or msg["table"]
        gateway = msg.get("RTA_GATEWAY")
        if msg["proto"] != proto or table != RT_TABLE_MAIN or not gateway:
            continue
        routes.append(
            GatewayRoute(
                dst=IPv4Network(f"{msg.get('RTA_DST') or '0.0.0.0'}/{msg['dst_len']}"),
                gateway=IPv4Address(gateway),
                ifindex=msg.get("RTA_OIF"),
                onlink=bool(msg["flags"] & RTNH_F_ONLINK),
            )
        )
    return sorted(routes)


def lookup_route(rtnl: Rtnl, dst: IPv4Address) -> RouteLookup:
    """Ask the kernel how it would reach `dst` (`ip route get`)."""
    with rtnl_errors(f"route get {dst}"):
        msgs = rtnl.ipr.route("get", dst=str(dst))
    gateway = msgs[0].get("RTA_GATEWAY")
    source = msgs[0].get("RTA_PREFSRC")
    return RouteLookup(
        ifindex=msgs[0].get("RTA_OIF"),
        gateway=IPv4Address(gateway) if gateway else None,
        source=IPv4Address(source) if source else None,
    )
