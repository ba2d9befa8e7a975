"""The vxlan backend (flannel's default): one VXLAN device, static entries per remote node.

For every other node, three permanent entries on `flannel.<VNI>` (no L2/L3 miss handling):
    neighbour  <remote subnet network IP> lladdr <remote VtepMAC>
    fdb        <remote VtepMAC> dst <remote public IP> self permanent
    route      <remote subnet> via <remote subnet network IP> dev flannel.<VNI> onlink
The remote subnet's network address is the remote device's own address (/32), so the
route's gateway is the remote VTEP, which the neighbour entry resolves to its MAC and the
FDB entry to the node that receives the encapsulated frame.

DirectRouting: a peer whose public IP the kernel reaches without a gateway (same L2
network) gets a plain route via its public IP instead, and no encapsulation at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import TYPE_CHECKING

from podnet.agent._backend import LocalNode
from podnet.agent._entries import Entries
from podnet.agent._lease import Lease, VxlanData
from podnet.agent._vtep_mac import vtep_mac
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    VxlanSpec,
    ensure_sole_address,
    ensure_vxlan,
    get_link,
    lookup_route,
)

if TYPE_CHECKING:
    from podnet.agent._config import NetworkConfig

ENCAP_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
VXLAN = "vxlan"  # its Backend.Type and its nodes' backend-type annotation


@dataclass(frozen=True)
class VxlanBackend:
    device: int  # ifindex of flannel.<VNI>
    mtu: int
    backend_data: VxlanData
    # The link a peer's public IP is directly reachable on (DirectRouting), else None.
    direct_link: Callable[[IPv4Address], int | None]
    type: str = VXLAN

    @property
    def owned_device(self) -> int | None:
        return self.device

    def entries_for(self, lease: Lease) -> Entries:
        if lease.backend_type != self.type or lease.backend_data is None:
            return Entries()  # flannel ignores leases of another backend too
        direct = self.direct_link(lease.public_ip)
        if direct is not None:
            return Entries(routes=frozenset({GatewayRoute(lease.subnet, lease.public_ip, direct)}))
        vtep_ip = lease.subnet.network_address
        mac = lease.backend_data.vtep_mac
        return Entries(
            routes=frozenset({GatewayRoute(lease.subnet, vtep_ip, self.device, onlink=True)}),
            neighbours=frozenset({Neighbour(self.device, vtep_ip, mac)}),
            fdb=frozenset({FdbEntry(self.device, mac, lease.public_ip)}),
        )


def device_name(vni: int) -> str:
    return f"flannel.{vni}"


def setup_vxlan(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> VxlanBackend:
    """Create (or keep) flannel.<VNI> with this node's stable MAC, give it the lease's
    network address as a /32, bring it up."""
    if config.network is None:
        raise ValueError("the vxlan backend needs an IPv4 Network")
    cfg = config.backend
    underlay = get_link(rtnl, node.underlay)
    mtu = (cfg.mtu or underlay.mtu) - ENCAP_OVERHEAD
    mac = vtep_mac(node.name, cfg.vni)
    device = ensure_vxlan(
        rtnl,
        VxlanSpec(
            name=device_name(cfg.vni),
            vni=cfg.vni,
            local=node.local_ip,  # flannel up to v0.27.3 (later ones: the public IP)
            underlay_index=underlay.index,
            mtu=mtu,
            mac=mac,
            port=cfg.port,
            learning=cfg.learning,
        ),
    )
    address = IPv4Interface(f"{node.subnet.network_address}/32")
    ensure_sole_address(rtnl, device.index, address, within=config.network)
    rtnl.set_up(device.index)

    def direct_link(peer: IPv4Address) -> int | None:
        if not cfg.direct_routing:
            return None
        found = lookup_route(rtnl, peer)
        return found.ifindex if found.gateway is None else None

    return VxlanBackend(
        device=device.index,
        mtu=mtu,
        backend_data=VxlanData(vni=cfg.vni, vtep_mac=mac),
        direct_link=direct_link,
    )
