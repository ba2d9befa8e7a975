"""The kernel tables the reconciler reads and writes, behind a small Protocol so the
reconciler can be tested against a fake, and the real one over an rtnetlink socket."""

from __future__ import annotations

from typing import Protocol

from podnet.agent._entries import Entries
from podnet.netlink import (
    FdbEntry,
    GatewayRoute,
    Neighbour,
    Rtnl,
    delete_route,
    fdb_delete,
    fdb_entries,
    fdb_replace,
    neigh_delete,
    neigh_replace,
    permanent_neighbours,
    replace_route,
    routes_with_proto,
)

# Every route the agent installs carries this routing protocol number (0x50, "P"), unused
# by iproute2's rt_protos, so that the agent lists, and ever deletes, only its own routes.
ROUTE_PROTO = 80


class KernelTables(Protocol):
    def read(self, owned_devices: tuple[int, ...]) -> Entries:
        """The agent's routes, plus the permanent neighbour and FDB entries of
        `owned_devices` (links whose tables are all the agent's)."""
        ...

    def replace_neighbour(self, entry: Neighbour) -> None: ...
    def delete_neighbour(self, entry: Neighbour) -> None: ...
    def replace_fdb(self, entry: FdbEntry) -> None: ...
    def delete_fdb(self, entry: FdbEntry) -> None: ...
    def replace_route(self, route: GatewayRoute) -> None: ...
    def delete_route(self, route: GatewayRoute) -> None: ...


class RtnlTables:
    """KernelTables of the namespace an Rtnl socket lives in."""

    def __init__(self, rtnl: Rtnl, *, proto: int = ROUTE_PROTO) -> None:
        self.rtnl = rtnl
        self.proto = proto

    def read(self, owned_devices: tuple[int, ...]) -> Entries:
        entries = Entries(routes=frozenset(routes_with_proto(self.rtnl, self.proto)))
        for device in owned_devices:
            entries |= Entries(
                neighbours=frozenset(permanent_neighbours(self.rtnl, device)),
                fdb=frozenset(fdb_entries(self.rtnl, device)),
            )
        return entries

    def replace_neighbour(self, entry: Neighbour) -> None:
        neigh_replace(self.rtnl, entry)

    def delete_neighbour(self, entry: Neighbour) -> None:
        neigh_delete(self.rtnl, entry)

    def replace_fdb(self, entry: FdbEntry) -> None:
        fdb_replace(self.rtnl, entry)

    def delete_fdb(self, entry: FdbEntry) -> None:
        fdb_delete(self.rtnl, entry)

    def replace_route(self, route: GatewayRoute) -> None:
        replace_route(self.rtnl, route, proto=self.proto)

    def delete_route(self, route: GatewayRoute) -> None:
        delete_route(self.rtnl, route, proto=self.proto)
