"""Range sets: the pools host-local allocates from, one address per set.

A set is a list of disjoint ranges of one address family (a pod gets one address from
the set, from whichever range has room); a config holds a list of sets (dual-stack is two
sets). Validation and messages follow the reference's range_set.go and config.go.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from podnet._record import FrozenRecord
from podnet.ipam._range import IPAddress, IPAMError, Range, canonical_ip

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final


class RangeSet(FrozenRecord):
    __slots__ = ("ranges",)

    def __init__(self, ranges: tuple[Range, ...]) -> None:
        self.ranges: Final = ranges

    @property
    def version(self) -> int:
        return self.ranges[0].version

    def range_for(self, address: IPAddress) -> Range | None:
        address = canonical_ip(address)
        for candidate in self.ranges:
            if candidate.contains(address):
                return candidate
        return None

    def contains(self, address: IPAddress) -> bool:
        return self.range_for(address) is not None

    def overlaps(self, other: RangeSet) -> bool:
        return any(mine.overlaps(theirs) for mine in self.ranges for theirs in other.ranges)

    def size(self) -> int:
        """How many addresses the set can hand out, gateways excluded."""
        return sum(r.size() for r in self.ranges)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)


def range_set(ranges: Sequence[Range]) -> RangeSet:
    """A validated set: not empty, one family, no two ranges overlapping."""
    if not ranges:
        raise IPAMError("empty range set")
    family = ranges[0].version
    if any(r.version != family for r in ranges):
        raise IPAMError("mixed address families")
    for i, first in enumerate(ranges):
        for second in ranges[i + 1 :]:
            if first.overlaps(second):
                raise IPAMError(f"subnets {first} and {second} overlap")
    return RangeSet(tuple(ranges))


def check_disjoint(sets: Sequence[RangeSet]) -> None:
    """No address may belong to two sets: 'range set I overlaps with J' otherwise."""
    for i, first in enumerate(sets):
        for j in range(i + 1, len(sets)):
            if first.overlaps(sets[j]):
                raise IPAMError(f"range set {i} overlaps with {j}")


def count_free(rangeset: RangeSet, reserved: Iterable[IPAddress]) -> int:
    """How many addresses of `rangeset` are neither reserved nor a gateway."""
    taken = set()
    for address in reserved:
        found = rangeset.range_for(address)
        if found is not None and canonical_ip(address) != found.gateway:
            taken.add(canonical_ip(address))
    return rangeset.size() - len(taken)
