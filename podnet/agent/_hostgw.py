"""The host-gw backend: no encapsulation, the other node itself is the gateway.

    route  <remote subnet> via <remote public IP> dev <underlay>

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
    type: str = HOST_GW

    @property
    def backend_data(self) -> VxlanData | None:
        return None

    @property
    def owned_device(self) -> int | None:
        return None  # the underlay's neighbour table is the kernel's, not ours

    def entries_for(self, lease: Lease) -> Entries:
        if lease.backend_type != self.type:
            return Entries()
        return Entries(
            routes=frozenset({GatewayRoute(lease.subnet, lease.public_ip, self.underlay)})
        )


def setup_host_gw(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> HostGwBackend:
    if node.local_ip != node.public_ip:  # the peers' next hop would be an address not here
        raise ValueError(
            "your PublicIP differs from interface IP, meaning that probably you're on a NAT, "
            "which is not supported by host-gw backend"
        )
    underlay = get_link(rtnl, node.underlay)
    return HostGwBackend(underlay=underlay.index, mtu=underlay.mtu)
