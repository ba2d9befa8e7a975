"""What a backend is (the table of backends is in _registry: explicit, no registration on
import).

A backend is set up once on the node (it may create a device), then it is a pure mapping
from another node's lease to the kernel entries that reach that node's pods: host-gw needs
one route, vxlan a route plus a neighbour and an FDB entry, per address family the node
carries. Keeping the mapping pure lets one reconciler serve every backend, for events and
for periodic repair alike.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Protocol, TypeAlias

from podnet.agent._entries import Entries
from podnet.agent._lease import Lease, VxlanData
from podnet.netlink import Rtnl, RtnlError, get_link, ipv4_addresses, list_addresses

if TYPE_CHECKING:  # the config parser takes its backend names from _registry, which imports this
    from podnet.agent._config import NetworkConfig


@dataclass(frozen=True)
class LocalNode:
    """This node as its backend sees it."""

    name: str
    subnet: IPv4Network | None  # this node's IPv4 podCIDR (None: IPv6 only)
    underlay: str  # the interface facing the other nodes
    public_ip: IPv4Address | None  # where the other nodes send to (annotation public-ip)
    # the underlay's own address, the VXLAN device's local one; None: public_ip (they
    # differ only behind NAT, and the kernel cannot send from an address it does not hold)
    underlay_ip: IPv4Address | None = None
    ipv6_subnet: IPv6Network | None = None  # its IPv6 podCIDR (None: IPv4 only)
    public_ipv6: IPv6Address | None = None  # annotation public-ipv6
    underlay_ipv6: IPv6Address | None = None  # the flannel-v6 device's local address

    @property
    def local_ip(self) -> IPv4Address | None:
        return self.underlay_ip or self.public_ip

    @property
    def local_ipv6(self) -> IPv6Address | None:
        return self.underlay_ipv6 or self.public_ipv6


class Backend(Protocol):
    @property
    def type(self) -> str: ...

    @property
    def mtu(self) -> int:
        """FLANNEL_MTU: what a pod interface may carry through this backend."""
        ...

    @property
    def backend_data(self) -> VxlanData | None:
        """What other nodes need besides the public IP (published in the lease)."""
        ...

    @property
    def backend_v6_data(self) -> VxlanData | None:
        """The same for the IPv6 family."""
        ...

    @property
    def owned_devices(self) -> tuple[int, ...]:
        """The links whose permanent neighbour and FDB entries all belong to the agent."""
        ...

    def entries_for(self, lease: Lease) -> Entries:
        """The kernel entries through which this node reaches `lease`'s pods."""
        ...


BackendSetup: TypeAlias = "Callable[[Rtnl, NetworkConfig, LocalNode], Backend]"


def public_address(rtnl: Rtnl, underlay: str) -> IPv4Address:
    """The first IPv4 address of the underlay interface (flannel's default public IP)."""
    addresses = ipv4_addresses(rtnl, get_link(rtnl, underlay).index)
    if not addresses:
        raise RtnlError(errno.EADDRNOTAVAIL, f"interface {underlay} has no IPv4 address")
    return addresses[0].ip


def public_address_v6(rtnl: Rtnl, underlay: str) -> IPv6Address:
    """The first global IPv6 address of the underlay interface (flannel's default public
    IPv6; link-local ones cannot carry the overlay)."""
    addresses = [
        a.address.ip
        for a in list_addresses(rtnl, get_link(rtnl, underlay).index, version=6)
        if a.is_global and isinstance(a.address.ip, IPv6Address)
    ]
    if not addresses:
        raise RtnlError(errno.EADDRNOTAVAIL, f"interface {underlay} has no global IPv6 address")
    return addresses[0]
