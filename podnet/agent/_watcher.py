"""Turning what the store reports into batches of lease changes (pure, no I/O).

As flannel's LeaseWatcher: it remembers the other nodes' leases, keyed by subnet (the IPv4
one, the IPv6 one on an IPv6-only node: Lease.key), and
    - `reset(snapshot)` (start, or a watch that fell behind) answers Added for every lease
      that is new or changed and Removed for every remembered one that is gone;
    - `update(events)` applies single Added/Removed events.
The local node's own lease is never reported: nobody routes to themselves.
An Added event for a subnet already known carries the lease it replaces in `previous`, so
a backend can take away what only the old one needed (a MAC or public IP that changed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

from podnet.agent._lease import Lease


class EventKind(enum.Enum):
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True)
class LeaseEvent:
    kind: EventKind
    lease: Lease
    previous: Lease | None = None


def added(lease: Lease) -> LeaseEvent:
    return LeaseEvent(EventKind.ADDED, lease)


def removed(lease: Lease) -> LeaseEvent:
    return LeaseEvent(EventKind.REMOVED, lease)


Subnet = IPv4Network | IPv6Network


def _subnet_order(subnet: Subnet) -> tuple[int, Subnet]:
    return (subnet.version, subnet)  # networks of two versions do not compare


class LeaseWatcher:
    def __init__(self, own_subnet: Subnet) -> None:
        self.own_subnet = own_subnet
        self._leases: dict[Subnet, Lease] = {}

    @property
    def leases(self) -> list[Lease]:
        """The other nodes' leases as last reported, in subnet order."""
        return [self._leases[subnet] for subnet in sorted(self._leases, key=_subnet_order)]

    def reset(self, snapshot: Iterable[Lease]) -> list[LeaseEvent]:
        fresh: dict[Subnet, Lease] = {}
        for lease in snapshot:
            if lease.key != self.own_subnet:
                fresh[lease.key] = lease
        batch: list[LeaseEvent] = []
        for subnet in sorted(fresh, key=_subnet_order):
            old = self._leases.get(subnet)
            if old != fresh[subnet]:
                batch.append(LeaseEvent(EventKind.ADDED, fresh[subnet], old))
        for subnet in sorted(self._leases.keys() - fresh.keys(), key=_subnet_order):
            batch.append(removed(self._leases[subnet]))
        self._leases = fresh
        return batch

    def update(self, events: Iterable[LeaseEvent]) -> list[LeaseEvent]:
        batch: list[LeaseEvent] = []
        for event in events:
            subnet = event.lease.key
            if subnet == self.own_subnet:
                continue
            old = self._leases.get(subnet)
            if event.kind is EventKind.ADDED:
                if old == event.lease:
                    continue  # nothing changed (e.g. an unrelated annotation)
                self._leases[subnet] = event.lease
                batch.append(LeaseEvent(EventKind.ADDED, event.lease, old))
            elif old is not None:
                del self._leases[subnet]
                batch.append(removed(old))
        return batch
