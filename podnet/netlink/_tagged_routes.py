"""IPv4 and IPv6 routes in the main table, tagged with a routing protocol number.

The node agent marks every route it installs with its own `proto` number, so that when it
reconciles it can list exactly its own routes and delete the ones no lease wants any more,
and never touch a route someone else made (kernel, DHCP, an administrator).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from podnet.netlink._rtnl import Rtnl, RtnlError, rtnl_errors

RT_TABLE_MAIN = 254
RTNH_F_ONLINK = 4


@dataclass(frozen=True, order=True)
class GatewayRoute:
    """`dst` via `gateway` out of link #ifindex; `onlink`: the gateway needs no connected
    route (the overlay's gateway is the remote VTEP address, reachable only through the
    device itself)."""

    dst: IPv4Network | IPv6Network
    gateway: IPv4Address | IPv6Address
    ifindex: int
    onlink: bool = False

    def sort_key(self) -> tuple[int, GatewayRoute]:
        """Routes of both families sort together, IPv4 first (addresses of different
        versions do not compare)."""
        return (self.dst.version, self)


@dataclass(frozen=True)
class RouteLookup:
    """Where the kernel would send a packet: out of link #ifindex, via `gateway` or, when
    it is None, straight to the destination (it is on a directly connected network)."""

    ifindex: int
    gateway: IPv4Address | IPv6Address | None
    # the preferred source address, if the kernel has one
    source: IPv4Address | IPv6Address | None = None


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
    """Every route (IPv4, then IPv6) of the main table tagged `proto` that has a single
    gateway."""
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        routes += _family_routes(rtnl, proto, family)
    return sorted(routes, key=GatewayRoute.sort_key)


def _family_routes(rtnl: Rtnl, proto: int, family: int) -> list[GatewayRoute]:
    any_address = "0.0.0.0" if family == socket.AF_INET else "::"
    msgs = rtnl.dump(
        f"dump routes of proto {proto}",
        lambda: rtnl.ipr.route("dump", family=family),
    )
    routes = []
    for msg in msgs:
        table = msg.get("RTA_TABLE") or msg["table"]
        gateway = msg.get("RTA_GATEWAY")
        if msg["proto"] != proto or table != RT_TABLE_MAIN or not gateway:
            continue
        routes.append(
            GatewayRoute(
                dst=ipaddress.ip_network(f"{msg.get('RTA_DST') or any_address}/{msg['dst_len']}"),
                gateway=ipaddress.ip_address(gateway),
                ifindex=msg.get("RTA_OIF"),
                onlink=bool(msg["flags"] & RTNH_F_ONLINK),
            )
        )
    return routes


def lookup_route(rtnl: Rtnl, dst: IPv4Address | IPv6Address) -> RouteLookup:
    """Ask the kernel how it would reach `dst` (`ip route get`)."""
    with rtnl_errors(f"route get {dst}"):
        msgs = rtnl.ipr.route("get", dst=str(dst))
    gateway = msgs[0].get("RTA_GATEWAY")
    source = msgs[0].get("RTA_PREFSRC")
    return RouteLookup(
        ifindex=msgs[0].get("RTA_OIF"),
        gateway=ipaddress.ip_address(gateway) if gateway else None,
        source=ipaddress.ip_address(source) if source else None,
    )
