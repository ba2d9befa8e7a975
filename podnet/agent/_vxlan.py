"""The vxlan backend (flannel's default): one VXLAN device per family, static entries per
remote node.

For every other node, three permanent entries on `flannel.<VNI>` (no L2/L3 miss handling):
    neighbour  <remote subnet network IP> lladdr <remote VtepMAC>
    fdb        <remote VtepMAC> dst <remote public IP> self permanent
    route      <remote subnet> via <remote subnet network IP> dev flannel.<VNI> onlink
The remote subnet's network address is the remote device's own address (/32), so the
route's gateway is the remote VTEP, which the neighbour entry resolves to its MAC and the
FDB entry to the node that receives the encapsulated frame.

IPv6 (EnableIPv6) is the same again on a second device, `flannel-v6.<VNI>`, as flannel's:
its own MAC (published in `backend-v6-data`), the lease's IPv6 network address as a /128,
tunnelled over the underlay's IPv6 address (`public-ipv6`) to the peers' IPv6 addresses.
Its MTU leaves room for the larger outer header (70 bytes, not 50: flannel takes 50 for
both, and a full-size IPv6 pod packet then does not fit), and FLANNEL_MTU is the smaller
of the two devices', since a pod's one interface carries both families.

DirectRouting: a peer whose public IP the kernel reaches without a gateway (same L2
network) gets a plain route via its public IP instead, and no encapsulation at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
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
    from ipaddress import IPv4Network, IPv6Network

    from podnet.agent._config import NetworkConfig

ENCAP_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
ENCAP_OVERHEAD_V6 = 70  # outer IPv6 40 + UDP 8 + VXLAN 8 + inner Ethernet 14
VXLAN = "vxlan"  # its Backend.Type and its nodes' backend-type annotation

IPAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class VxlanDevice:
    """One family's device as set up: its ifindex, MTU and what it publishes."""

    index: int
    mtu: int
    data: VxlanData


@dataclass(frozen=True)
class VxlanBackend:
    v4: VxlanDevice | None  # flannel.<VNI>, when IPv4 is enabled
    v6: VxlanDevice | None  # flannel-v6.<VNI>, when IPv6 is enabled
    # The link a peer's public IP is directly reachable on (DirectRouting), else None.
    direct_link: Callable[[IPAddress], int | None]
    type: str = VXLAN

    @property
    def mtu(self) -> int:
        return min(device.mtu for device in (self.v4, self.v6) if device is not None)

    @property
    def backend_data(self) -> VxlanData | None:
        return self.v4.data if self.v4 is not None else None

    @property
    def backend_v6_data(self) -> VxlanData | None:
        return self.v6.data if self.v6 is not None else None

    @property
    def owned_devices(self) -> tuple[int, ...]:
        return tuple(device.index for device in (self.v4, self.v6) if device is not None)

    def entries_for(self, lease: Lease) -> Entries:
        if lease.backend_type != self.type:
            return Entries()  # flannel ignores leases of another backend too
        entries = Entries()
        if self.v4 is not None and lease.subnet is not None and lease.backend_data is not None:
            assert lease.public_ip is not None  # a lease has both or neither
            entries |= self._family_entries(
                self.v4, lease.subnet, lease.public_ip, lease.backend_data
            )
        if self.v6 is not None and lease.ipv6_subnet is not None:
            if lease.backend_v6_data is not None and lease.public_ipv6 is not None:
                entries |= self._family_entries(
                    self.v6, lease.ipv6_subnet, lease.public_ipv6, lease.backend_v6_data
                )
        return entries

    def _family_entries(
        self,
        device: VxlanDevice,
        subnet: IPv4Network | IPv6Network,
        public_ip: IPAddress,
        data: VxlanData,
    ) -> Entries:
        direct = self.direct_link(public_ip)
        if direct is not None:
            return Entries(routes=frozenset({GatewayRoute(subnet, public_ip, direct)}))
        vtep_ip = subnet.network_address
        return Entries(
            routes=frozenset({GatewayRoute(subnet, vtep_ip, device.index, onlink=True)}),
            neighbours=frozenset({Neighbour(device.index, vtep_ip, data.vtep_mac)}),
            fdb=frozenset({FdbEntry(device.index, data.vtep_mac, public_ip)}),
        )


def device_name(vni: int) -> str:
    return f"flannel.{vni}"


def v6_device_name(vni: int) -> str:
    return f"flannel-v6.{vni}"


def setup_vxlan(rtnl: Rtnl, config: NetworkConfig, node: LocalNode) -> VxlanBackend:
    """Create (or keep) flannel.<VNI> and/or flannel-v6.<VNI> with this node's stable MACs,
    give each the lease's network address (/32, /128), bring them up."""
    cfg = config.backend
    underlay = get_link(rtnl, node.underlay)
    base_mtu = cfg.mtu or underlay.mtu
    v4 = v6 = None
    if config.enable_ipv4:
        if config.network is None or node.subnet is None or node.local_ip is None:
            raise ValueError("the vxlan backend's IPv4 device needs a Network and a podCIDR")
        v4 = _device(
            rtnl,
            VxlanSpec(
                name=device_name(cfg.vni),
                vni=cfg.vni,
                local=node.local_ip,  # flannel up to v0.27.3 (later ones: the public IP)
                underlay_index=underlay.index,
                mtu=base_mtu - ENCAP_OVERHEAD,
                mac=vtep_mac(node.name, cfg.vni),
                port=cfg.port,
                learning=cfg.learning,
            ),
            IPv4Interface(f"{node.subnet.network_address}/32"),
            config.network,
        )
    if config.enable_ipv6:
        if config.ipv6_network is None or node.ipv6_subnet is None or node.local_ipv6 is None:
            raise ValueError("the vxlan backend's IPv6 device needs an IPv6Network and podCIDR")
        v6 = _device(
            rtnl,
            VxlanSpec(
                name=v6_device_name(cfg.vni),
                vni=cfg.vni,
                local=node.local_ipv6,
                underlay_index=underlay.index,
                mtu=base_mtu - ENCAP_OVERHEAD_V6,
                # its own stable MAC: the two devices are two endpoints on the wire
                mac=vtep_mac(node.name, cfg.vni, family=6),
                port=cfg.port,
                learning=cfg.learning,
            ),
            IPv6Interface(f"{node.ipv6_subnet.network_address}/128"),
            config.ipv6_network,
        )

    def direct_link(peer: IPAddress) -> int | None:
        if not cfg.direct_routing:
            return None
        found = lookup_route(rtnl, peer)
        return found.ifindex if found.gateway is None else None

    return VxlanBackend(v4=v4, v6=v6, direct_link=direct_link)


def _device(
    rtnl: Rtnl,
    spec: VxlanSpec,
    address: IPv4Interface | IPv6Interface,
    within: IPv4Network | IPv6Network,
) -> VxlanDevice:
    device = ensure_vxlan(rtnl, spec)
    ensure_sole_address(rtnl, device.index, address, within=within)
    rtnl.set_up(device.index)
    return VxlanDevice(device.index, spec.mtu, VxlanData(vni=spec.vni, vtep_mac=spec.mac))
