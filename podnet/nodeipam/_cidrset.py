"""The CIDR set: which node-sized blocks of a cluster CIDR are taken. Pure, no I/O.

Same algorithm as kube-controller-manager's cidrset (pkg/controller/nodeipam/ipam/cidrset):
a bitmap of the 2^(node mask - cluster mask) blocks; `allocate_next` is a round-robin
next-fit that scans from the block after the last one handed out (so a block released
now is reused only after the scan wraps around); `occupy` / `release` mark every block a
CIDR overlaps, whether it is a node block, part of one, or a larger range such as the
service range.

The bitmap is a bytearray with one bit per block; finding a free block skips full bytes
with a regex search, which runs in C.
"""

from __future__ import annotations

import ipaddress
import re

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# kube-controller-manager's limit for IPv6 (its bitmap is not compressed); we keep it.
CLUSTER_SUBNET_MAX_DIFF = 16
# Our own limit for IPv4 (KCM has none): 2^24 blocks is a 2 MiB bitmap.
MAX_BLOCKS_LOG2 = 24

_NOT_FULL = re.compile(rb"[^\xff]")


class CIDRSetError(Exception):
    pass


class CIDRRangeFull(CIDRSetError):
    def __init__(self) -> None:
        super().__init__(
            "CIDR allocation failed; there are no remaining CIDRs left to allocate in the "
            "accepted range"
        )


class SubnetTooBig(CIDRSetError):
    def __init__(self) -> None:
        super().__init__("New CIDR set failed; the node CIDR size is too big")


class CIDROutOfRange(CIDRSetError):
    pass


class CIDRSet:
    """The node-sized blocks of one cluster CIDR, and which of them are taken."""

    def __init__(self, cluster_cidr: IPNetwork, node_mask: int) -> None:
        if not cluster_cidr.prefixlen <= node_mask <= cluster_cidr.max_prefixlen:
            raise CIDRSetError(
                f"node mask /{node_mask} does not fit cluster CIDR {cluster_cidr} "
                f"(must be between {cluster_cidr.prefixlen} and {cluster_cidr.max_prefixlen})"
            )
        diff = node_mask - cluster_cidr.prefixlen
        if cluster_cidr.version == 6 and diff > CLUSTER_SUBNET_MAX_DIFF:
            raise SubnetTooBig()
        if diff > MAX_BLOCKS_LOG2:
            raise CIDRSetError(
                f"node mask /{node_mask} splits {cluster_cidr} into 2^{diff} blocks; "
                f"at most 2^{MAX_BLOCKS_LOG2} are supported"
            )
        self.cluster_cidr = cluster_cidr
        self.node_mask = node_mask
        self.max_blocks = 1 << diff
        self.allocated = 0
        self._next_candidate = 0
        self._shift = cluster_cidr.max_prefixlen - node_mask
        self._base = int(cluster_cidr.network_address)
        self._bits = bytearray((self.max_blocks + 7) // 8)
        spare = self.max_blocks & 7
        if spare:  # bits past the last block count as taken, so no search returns them
            self._bits[-1] = (0xFF << spare) & 0xFF

    def __repr__(self) -> str:
        return (
            f"CIDRSet({self.cluster_cidr}, /{self.node_mask}: "
            f"{self.allocated}/{self.max_blocks} taken)"
        )

    @property
    def free(self) -> int:
        return self.max_blocks - self.allocated

    def block(self, index: int) -> IPNetwork:
        """The node CIDR at `index`."""
        address = self._base + (index << self._shift)
        # The family's own class: ip_network() would read a small int as IPv4.
        return type(self.cluster_cidr)((address, self.node_mask))

    def allocate_next(self) -> IPNetwork:
        """Take the next free block after the last one handed out; CIDRRangeFull if none."""
        if self.allocated == self.max_blocks:
            raise CIDRRangeFull()
        candidate = self._find_free(self._next_candidate, self.max_blocks)
        if candidate is None:
            candidate = self._find_free(0, self._next_candidate)
        if candidate is None:  # the counters say otherwise; trust the bitmap
            raise CIDRRangeFull()
        self._set(candidate)
        self.allocated += 1
        self._next_candidate = (candidate + 1) % self.max_blocks
        return self.block(candidate)

    def occupy(self, cidr: IPNetwork) -> None:
        """Mark every block `cidr` overlaps as taken (idempotent); CIDROutOfRange when it
        does not overlap the cluster CIDR."""
        begin, end = self._indices(cidr)
        for index in range(begin, end + 1):
            if not self._test(index):
                self._set(index)
                self.allocated += 1

    def release(self, cidr: IPNetwork) -> None:
        """Mark every block `cidr` overlaps as free (idempotent)."""
        begin, end = self._indices(cidr)
        for index in range(begin, end + 1):
            if self._test(index):
                self._clear(index)
                self.allocated -= 1

    def is_taken(self, cidr: IPNetwork) -> bool:
        """True when every block `cidr` overlaps is taken."""
        begin, end = self._indices(cidr)
        return all(self._test(index) for index in range(begin, end + 1))

    def contains(self, cidr: IPNetwork) -> bool:
        """True when `cidr` lies inside the cluster CIDR."""
        return cidr.version == self.cluster_cidr.version and cidr.subnet_of(self.cluster_cidr)  # type: ignore[arg-type]

    # -- bitmap --------------------------------------------------------------------------
    def _indices(self, cidr: IPNetwork) -> tuple[int, int]:
        cluster = self.cluster_cidr
        if cidr.version != cluster.version or not cidr.overlaps(cluster):
            raise CIDROutOfRange(f"cidr {cidr} is out the range of cluster cidr {cluster}")
        if cidr.prefixlen <= cluster.prefixlen:
            return 0, self.max_blocks - 1  # it covers the whole cluster CIDR
        first = (int(cidr.network_address) - self._base) >> self._shift
        last = (int(cidr.broadcast_address) - self._base) >> self._shift
        return first, last

    def _test(self, index: int) -> bool:
        return bool(self._bits[index >> 3] >> (index & 7) & 1)

    def _set(self, index: int) -> None:
        self._bits[index >> 3] |= 1 << (index & 7)

    def _clear(self, index: int) -> None:
        self._bits[index >> 3] &= ~(1 << (index & 7)) & 0xFF

    def _find_free(self, lo: int, hi: int) -> int | None:
        """The first free block index in [lo, hi)."""
        while lo < hi and lo & 7:
            if not self._test(lo):
                return lo
            lo += 1
        if lo >= hi:
            return None
        match = _NOT_FULL.search(self._bits, lo >> 3, (hi + 7) >> 3)
        if match is None:
            return None
        byte_index = match.start()
        value = self._bits[byte_index]
        for bit in range(8):
            if not value >> bit & 1:
                index = (byte_index << 3) | bit
                return index if index < hi else None
        return None
