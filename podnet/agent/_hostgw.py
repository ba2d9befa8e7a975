"""The host-gw backend: no encapsulation, the other node itself is the gateway.

    route  <remote subnet> via <remote public IP> dev <underlay>

Needs every node on one L2 network (the gateway must be directly reachable); in exchange
pods get the full underlay MTU.
"""

from __future__ import annotations

from dataclasses import dataclass

from podnet.agent._backend import LocalNode
from podnet.agent._config import NetworkConfig
from podnet.agent._entries import Entries
from podnet.agent._lease import Lease, VxlanData
from podnet.netlink import GatewayRoute, Rtnl


@dataclass(frozen=True)
class HostGwBackend:
    underlay: int  # ifindex
    mtu: int
    type: str = "host-gw"

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
    underlay = rtnl.link(node.underlay)
    return HostGwBackend(underlay=underlay.index, mtu=underlay.mtu)
