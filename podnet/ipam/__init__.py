"""Pure IP address management: ranges, range sets and the round-robin allocation order
of host-local. No I/O: the plugins own their stores."""

from podnet.ipam._allocator import candidates
from podnet.ipam._range import (
    IPAddress,
    IPAMError,
    IPNetwork,
    Range,
    canonical_ip,
    canonical_range,
    parse_cidr,
    parse_ip,
)
from podnet.ipam._range_set import RangeSet, check_disjoint, count_free, range_set

__all__ = [
    "IPAMError",
    "IPAddress",
    "IPNetwork",
    "Range",
    "RangeSet",
    "canonical_ip",
    "canonical_range",
    "candidates",
    "check_disjoint",
    "count_free",
    "parse_cidr",
    "parse_ip",
    "range_set",
]
