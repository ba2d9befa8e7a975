"""One address range: a subnet, the first and last address handed out, and the gateway.

`canonical_range` fills in the defaults and rejects what the reference host-local rejects,
with its words (plugins/ipam/host-local/backend/allocator/range.go):
- the subnet must be its network address, and leave at least two addresses (so IPv4 /31
  and /32, IPv6 /127 and /128 are refused);
- gateway defaults to subnet+1, rangeStart to subnet+1 (the gateway is then skipped while
  iterating, not excluded from the range), rangeEnd to the broadcast address - 1 for IPv4
  and to the very last address for IPv6 (IPv6 has no broadcast);
- rangeStart and rangeEnd must lie in the subnet. The gateway need not.
"""

from __future__ import annotations

import ipaddress

from podnet._record import FrozenRecord

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IPAMError(ValueError):
    """A range, range set or allocation request that cannot be honoured, in the words
    the reference host-local uses."""


def canonical_ip(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address, as Go's To4()
    reads it; everything else is itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_ip(text: str) -> IPAddress:
    """An address as Go's net.ParseIP accepts it (no zone, no prefix); ValueError else."""
    if "%" in text or "/" in text:
        raise ValueError(f"invalid IP address {text!r}")
    return canonical_ip(ipaddress.ip_address(text))


def parse_cidr(text: str) -> tuple[IPAddress, int]:
    """'10.1.2.0/24' -> (address as written, prefix length); host bits are kept so that the
    caller can refuse them with the reference's message."""
    address, sep, length = text.partition("/")
    if not sep or not length.isdigit() or (len(length) > 1 and length[0] == "0"):
        raise ValueError(f"invalid CIDR address: {text}")
    ip = ipaddress.ip_address(address) if "%" not in address else None
    if ip is None:
        raise ValueError(f"invalid CIDR address: {text}")
    prefix = int(length)
    if prefix > ip.max_prefixlen:
        raise ValueError(f"invalid CIDR address: {text}")
    mapped = canonical_ip(ip)
    if mapped is not ip:
        prefix = max(prefix - 96, 0)  # ::ffff:a.b.c.d/120 is a.b.c.d/24, as Go reads it
    return mapped, prefix


class Range(FrozenRecord):
    """A canonical range: every field set, start <= end inside subnet."""

    __slots__ = ("subnet", "start", "end", "gateway")

    def __init__(
        self, subnet: IPNetwork, start: IPAddress, end: IPAddress, gateway: IPAddress
    ) -> None:
        self.subnet: Final = subnet
        self.start: Final = start
        self.end: Final = end
        self.gateway: Final = gateway

    @property
    def version(self) -> int:
        return self.subnet.version

    def contains(self, address: IPAddress) -> bool:
        """Whether `address` is one this range may hand out (the gateway included)."""
        address = canonical_ip(address)
        return (
            address.version == self.version
            and address in self.subnet
            and int(self.start) <= int(address) <= int(self.end)
        )

    def overlaps(self, other: Range) -> bool:
        if self.version != other.version:
            return False
        return (
            self.contains(other.start)
            or self.contains(other.end)
            or other.contains(self.start)
            or other.contains(self.end)
        )

    def size(self) -> int:
        """How many addresses this range may hand out (the gateway excluded)."""
        count = int(self.end) - int(self.start) + 1
        return count - 1 if self.contains(self.gateway) else count

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def last_ip(subnet: IPNetwork) -> IPAddress:
    """The default rangeEnd: the broadcast address - 1 for IPv4, the last address for IPv6."""
    if subnet.version == 4:
        return subnet.broadcast_address - 1
    return subnet.broadcast_address


def canonical_range(
    subnet: tuple[IPAddress, int],
    *,
    start: IPAddress | None = None,
    end: IPAddress | None = None,
    gateway: IPAddress | None = None,
) -> Range:
    """The range with the reference's defaults filled in; IPAMError when it is unusable."""
    address, prefix = subnet
    max_prefix = address.max_prefixlen
    network = ipaddress.ip_network((address, prefix), strict=False)
    if prefix > max_prefix - 2:
        raise IPAMError(f"Network {address}/{prefix} too small to allocate from")
    if network.network_address != address:
        raise IPAMError(
            f"Network has host bits set. For a subnet mask of length {prefix} "
            f"the network address is {network.network_address}"
        )
    provisional = Range(network, network.network_address, network.broadcast_address, address)
    if start is not None:
        start = canonical_ip(start)
        if not provisional.contains(start):
            raise IPAMError(f"RangeStart {start} not in network {network}")
    if end is not None:
        end = canonical_ip(end)
        if not provisional.contains(end):
            raise IPAMError(f"RangeEnd {end} not in network {network}")
    if gateway is not None:
        gateway = canonical_ip(gateway)
        if gateway.version != network.version:
            raise IPAMError(f"Gateway {gateway} is not of the family of network {network}")
    canonical = Range(
        subnet=network,
        start=start if start is not None else network.network_address + 1,
        end=end if end is not None else last_ip(network),
        gateway=gateway if gateway is not None else network.network_address + 1,
    )
    # The reference accepts this and then iterates past the subnet; refuse it instead.
    if int(canonical.start) > int(canonical.end):
        raise IPAMError(f"RangeStart {canonical.start} is after RangeEnd {canonical.end}")
    return canonical
