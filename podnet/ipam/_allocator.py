"""The round-robin policy of host-local, without the store.

`candidates` yields the addresses to try, in the reference's order (allocator.go
RangeIter): start just after the last reserved address when it still belongs to the set
(else at the first range's rangeStart), walk to the end of that range, continue with the
next range of the set, wrap around, and stop after one full turn. Each range's gateway is
skipped. A crash-looping pod thus does not get the same address back until the whole set
has been used once.
"""

from __future__ import annotations

from collections.abc import Iterator

from podnet._record import FrozenRecord
from podnet.ipam._range import IPAddress, Range, canonical_ip
from podnet.ipam._range_set import RangeSet

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Final


class Candidate(FrozenRecord):
    __slots__ = ("address", "range")

    def __init__(self, address: IPAddress, range: Range) -> None:
        self.address: Final = address
        self.range: Final = range

    @property
    def prefixlen(self) -> int:
        return self.range.subnet.prefixlen

    @property
    def gateway(self) -> IPAddress:
        return self.range.gateway


def candidates(rangeset: RangeSet, last_reserved: IPAddress | None = None) -> Iterator[Candidate]:
    """Every address of `rangeset` once (gateways excluded), in round-robin order."""
    ranges = rangeset.ranges
    previous = rangeset.range_for(last_reserved) if last_reserved is not None else None
    if previous is not None and last_reserved is not None:
        index, current = _step(ranges, ranges.index(previous), canonical_ip(last_reserved))
    else:
        index, current = 0, ranges[0].start
    # Ranges of a set are disjoint, so coming back to the first address means one full turn.
    first = current
    while True:
        if current != ranges[index].gateway:
            yield Candidate(current, ranges[index])
        index, current = _step(ranges, index, current)
        if current == first:
            return


def _step(ranges: tuple[Range, ...], index: int, current: IPAddress) -> tuple[int, IPAddress]:
    """The address after `current` in range `index`: the next one, or the next range's start."""
    if current == ranges[index].end:
        index = (index + 1) % len(ranges)
        return index, ranges[index].start
    return index, current + 1
