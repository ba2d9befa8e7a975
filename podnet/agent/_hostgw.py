"""The host-gw backend: no encapsulation, the other node itself is the gateway.

    route  <remote subnet> via <remote public IP> dev <underlay>
    route  <remote IPv6 subnet> via <remote public IPv6> dev <underlay>   (EnableIPv6)

Needs every node on one L2 network (the gateway must be directly reachable); in exchange
pods get the full underlay MTU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from podnet.agent._backend import LocalNode
from podnet.agent._entries import Entries
from podnet.agent._lease import Lease, VxlanData
from podnet.netlink import GatewayRoute, Rtnl, get_link

if TYPE_CHECKING:
    from podnet.agent._config import NetworkConfig


HOST_GW = "host-gw"  # its Backend.Type and its nodes' backend-type annotation


@dataclass(frozen=True)
class HostGwBackend:
    underlay: int  # ifindex
    mtu: int
    ipv4: bool = True
    ipv6: bool = False
    type: str = HOST_GW

    @property
    def backend_data(self) -> VxlanData | None:
        return None

    @property
    def backend_v6_data(self) -> VxlanData | None:
        return None

    @property
    def owned_devices(self) -> tuple[int, ...]:
        return ()  # the underlay's neighbour table is the kernel's, not ours

    def entries_for(self, lease: Lease) -> Entries:
        if lease.backend_type != self.type:
            return Entries()
        routes = set()
        if self.ipv4 and lease.subnet is not None and lease.public_ip is not None:
            routes.add(GatewayRoute(lease.subnet, lease.public_ip, self.underlay))
        if self.ipv6 and lease.ipv6_subnet is not None and lease.public_ipv6 is not None:
            routes.add(GatewayRoute(lease.ipv6_subnet, lease.public_ipv6, self.underlay))
        return Entries(routes=frozenset(routes))


def setup_host_gw(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> HostGwBackend:
    if node.local_ip != node.public_ip:  # the peers' next hop would be an address not here
        raise ValueError(
            "your PublicIP differs from interface IP, meaning that probably you're on a NAT, "
            "which is not supported by host-gw backend"
        )
    underlay = get_link(rtnl, node.underlay)
    return HostGwBackend(
        underlay=underlay.index,
        mtu=underlay.mtu,
        ipv4=config.enable_ipv4,
        ipv6=config.enable_ipv6,
    )
