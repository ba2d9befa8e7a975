"""Kernel entries the agent owns, and the plan that turns what is there into what is wanted.

Entries are compared by key, the way the kernel identifies them: a route by destination
(main table), a neighbour by (link, IP), an FDB entry by (link, MAC). A wanted entry whose
key exists with other values is *replaced* in place (no window without a route), and an
existing entry whose key nobody wants is deleted. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeVar

from podnet.netlink import FdbEntry, GatewayRoute, Neighbour

E = TypeVar("E", GatewayRoute, Neighbour, FdbEntry)


@dataclass(frozen=True)
class Entries:
    routes: frozenset[GatewayRoute] = field(default_factory=frozenset)
    neighbours: frozenset[Neighbour] = field(default_factory=frozenset)
    fdb: frozenset[FdbEntry] = field(default_factory=frozenset)

    def __or__(self, other: Entries) -> Entries:
        return Entries(
            self.routes | other.routes,
            self.neighbours | other.neighbours,
            self.fdb | other.fdb,
        )

    @classmethod
    def union(cls, many: Iterable[Entries]) -> Entries:
        total = cls()
        for entries in many:
            total = total | entries
        return total

    def __len__(self) -> int:
        return len(self.routes) + len(self.neighbours) + len(self.fdb)


def route_key(route: GatewayRoute) -> IPv4Network | IPv6Network:
    return route.dst


def neighbour_key(entry: Neighbour) -> tuple[int, IPv4Address | IPv6Address]:
    return (entry.ifindex, entry.ip)


def fdb_key(entry: FdbEntry) -> tuple[int, str]:
    return (entry.ifindex, entry.mac)


@dataclass(frozen=True)
class Plan:
    """Changes in the order they must be applied: neighbour and FDB entries before the
    route that needs them (or the kernel would ARP for the gateway), deletions of routes
    before the entries they used."""

    replace_neighbours: tuple[Neighbour, ...] = ()
    replace_fdb: tuple[FdbEntry, ...] = ()
    replace_routes: tuple[GatewayRoute, ...] = ()
    delete_routes: tuple[GatewayRoute, ...] = ()
    delete_neighbours: tuple[Neighbour, ...] = ()
    delete_fdb: tuple[FdbEntry, ...] = ()

    def __bool__(self) -> bool:
        return any(
            (
                self.replace_neighbours,
                self.replace_fdb,
                self.replace_routes,
                self.delete_routes,
                self.delete_neighbours,
                self.delete_fdb,
            )
        )


def in_order(entries: Iterable[E]) -> tuple[E, ...]:
    """Sorted the same way every time, IPv4 before IPv6 (addresses of two versions do not
    compare, so the entries' own order cannot sort a mixed set)."""
    return tuple(sorted(entries, key=lambda entry: entry.sort_key()))


def _missing(wanted: frozenset[E], present: frozenset[E]) -> tuple[E, ...]:
    return in_order(wanted - present)


def plan(wanted: Entries, present: Entries) -> Plan:
    """What to change so that `present` becomes `wanted`."""
    unwanted = _not_wanted(present, wanted)
    return Plan(
        replace_neighbours=_missing(wanted.neighbours, present.neighbours),
        replace_fdb=_missing(wanted.fdb, present.fdb),
        replace_routes=_missing(wanted.routes, present.routes),
        delete_routes=in_order(unwanted.routes),
        delete_neighbours=in_order(unwanted.neighbours),
        delete_fdb=in_order(unwanted.fdb),
    )


def plan_removal(gone: Entries, wanted: Entries) -> Plan:
    """Delete the entries of `gone` (a lease that left or changed) that no key of `wanted`
    still needs; one still wanted under the same key is overwritten by its replacement."""
    unwanted = _not_wanted(gone, wanted)
    return Plan(
        delete_routes=in_order(unwanted.routes),
        delete_neighbours=in_order(unwanted.neighbours),
        delete_fdb=in_order(unwanted.fdb),
    )


def _not_wanted(gone: Entries, wanted: Entries) -> Entries:
    wanted_routes = {route_key(r) for r in wanted.routes}
    wanted_neighbours = {neighbour_key(n) for n in wanted.neighbours}
    wanted_fdb = {fdb_key(f) for f in wanted.fdb}
    return Entries(
        frozenset(r for r in gone.routes if route_key(r) not in wanted_routes),
        frozenset(n for n in gone.neighbours if neighbour_key(n) not in wanted_neighbours),
        frozenset(f for f in gone.fdb if fdb_key(f) not in wanted_fdb),
    )
