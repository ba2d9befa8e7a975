"""route_localnet on the node's interface toward a pod, as the reference portmap sets it
when it masquerades: a connection the node opens to 127.0.0.1:<hostPort> is DNATed to the
pod but keeps its source 127.0.0.1 until postrouting masquerades it, and without the flag
the kernel drops 127/8 routed out of an interface as a martian."""

from __future__ import annotations

import ipaddress

from podnet.netlink import get_link_by_index, list_routes, open_rtnl, set_sysctls


def enable_route_localnet(pod_ip: ipaddress.IPv4Address) -> str:
    """Set the flag on the interface the main table routes `pod_ip` out of; returns its
    name ("" when no route reaches the pod, as the reference then leaves it)."""
    with open_rtnl() as nl:
        routes = [r for r in list_routes(nl, version=4) if r.oif and pod_ip in r.dst]
        if not routes:
            return ""
        best = max(routes, key=lambda r: (r.dst.prefixlen, -r.priority))
        name = get_link_by_index(nl, best.oif).name
    set_sysctls({f"net/ipv4/conf/{name}/route_localnet": "1"})
    return name
