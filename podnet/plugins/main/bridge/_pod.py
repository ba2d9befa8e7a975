"""The pod side: addresses, routes and sysctls of the container interface (what the
reference's ipam.ConfigureIface does), and reading them back for CHECK."""

from __future__ import annotations

import errno
import ipaddress
import time

from podnet.cni import CNIError, Result
from podnet.netlink import (
    Link,
    NetlinkError,
    Rtnl,
    add_address,
    add_route,
    list_addresses,
    list_routes,
    set_link,
    set_sysctls,
)
from podnet.plugins.main.bridge._gateway import CONTAINER_INTERFACE_INDEX

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_DAD_TIMEOUT = 5.0


def pod_sysctls(ifname: str, *, enable_dad: bool, ipv6: bool) -> dict[str, str]:
    values = {f"net/ipv4/conf/{ifname}/arp_notify": "1"}
    if enable_dad:
        values[f"net/ipv6/conf/{ifname}/enhanced_dad"] = "1"
        values[f"net/ipv6/conf/{ifname}/accept_dad"] = "1"
    else:
        values[f"net/ipv6/conf/{ifname}/accept_dad"] = "0"
    if ipv6:
        # IPv6 may be disabled in a fresh namespace; addresses must survive a down/up.
        for name in ("lo", ifname):
            values[f"net/ipv6/conf/{name}/disable_ipv6"] = "0"
        values[f"net/ipv6/conf/{ifname}/keep_addr_on_down"] = "1"
    return values


def configure(pod: Rtnl, netns: str, link: Link, result: Result, *, enable_dad: bool) -> None:
    """Give the container interface its addresses and routes, then bring it up."""
    ipv6 = any(ip.version == 6 for ip in result.ips)
    set_sysctls(
        pod_sysctls(link.name, enable_dad=enable_dad, ipv6=ipv6), netns=netns, best_effort=True
    )
    gateways: dict[int, IPAddress] = {}
    for ip in result.ips:
        if ip.interface != CONTAINER_INTERFACE_INDEX:
            continue
        try:
            add_address(pod, link.index, ip.address, nodad=not enable_dad)
        except NetlinkError as exc:
            raise CNIError(
                f"failed to add IP addr {ip.address} to {link.name!r}: {exc.strerror}"
            ) from exc
        if ip.gateway is not None:
            gateways.setdefault(ip.version, ip.gateway)
    try:
        set_link(pod, link.index, up=True)
    except NetlinkError as exc:
        raise CNIError(f"failed to set {link.name!r} UP: {exc.strerror}") from exc
    if ipv6 and enable_dad:
        _settle(pod, link)
    for route in result.routes:
        gateway = route.gw if route.gw is not None else gateways.get(route.dst.version)
        try:
            add_route(
                pod,
                route.dst,
                oif=link.index,
                gateway=gateway,
                priority=route.priority,
                table=route.table,
                scope=route.scope,
                mtu=route.mtu,
                advmss=route.advmss,
            )
        except NetlinkError as exc:
            if exc.errno == errno.EEXIST:
                continue  # the same route twice in IPAM's answer
            via = f" via {gateway}" if gateway else ""
            raise CNIError(
                f"failed to add route '{route.dst}{via} dev {link.name}': {exc.strerror}"
            ) from exc


def _settle(pod: Rtnl, link: Link) -> None:
    """Wait for duplicate address detection to finish on the new IPv6 addresses."""
    deadline = time.monotonic() + _DAD_TIMEOUT
    while True:
        addresses = list_addresses(pod, link.index, version=6)
        if not any(a.tentative for a in addresses):
            return
        if time.monotonic() > deadline:
            raise CNIError(f"failed to settle addresses for {link.name!r}: DAD still running")
        time.sleep(0.05)


def verify(pod: Rtnl, link: Link, result: Result) -> None:
    """CHECK: every address of the result on the interface with its subnet route, and
    every route of the result in the pod's main table."""
    present = {a.address for a in list_addresses(pod, link.index)}
    routes = {4: list_routes(pod, version=4), 6: list_routes(pod, version=6)}
    for ip in result.ips:
        if ip.interface != CONTAINER_INTERFACE_INDEX:
            continue
        if ip.address not in present:
            raise CNIError(f"Failed to match addr {ip.address} on interface {link.name}")
        if not any(r.dst == ip.address.network for r in routes[ip.version]):
            raise CNIError(f"Failed to find Gateway {ip.gateway} for interface {link.name}")
    for route in result.routes:
        found = any(
            r.dst == route.dst and (route.gw is None or r.gateway == route.gw)
            for r in routes[route.dst.version]
        )
        if not found:
            via = f" via {route.gw}" if route.gw is not None else ""
            raise CNIError(f"Expected Route {route.dst}{via} not found in routing table")
