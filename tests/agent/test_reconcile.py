"""The reconciler against an in-memory kernel: what it writes, deletes, and survives."""

from __future__ import annotations

import errno
from ipaddress import IPv4Address, IPv4Network

from podnet.agent import (
    Entries,
    Lease,
    LeaseWatcher,
    Reconciler,
    VxlanBackend,
    VxlanData,
    VxlanDevice,
    added,
    removed,
)
from podnet.netlink import FdbEntry, GatewayRoute, Neighbour

DEV = 7


class FakeKernel:
    """Kernel tables keyed as the kernel keys them; records every call."""

    def __init__(self) -> None:
        self.routes: dict[IPv4Network, GatewayRoute] = {}
        self.neighbours: dict[tuple[int, IPv4Address], Neighbour] = {}
        self.fdb: dict[tuple[int, str], FdbEntry] = {}
        self.calls: list[str] = []
        self.broken: set[str] = set()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.broken:
            raise OSError(errno.EPERM, "nope")

    def read(self, owned_device):
        return Entries(
            frozenset(self.routes.values()),
            frozenset(self.neighbours.values()),
            frozenset(self.fdb.values()),
        )

    def replace_neighbour(self, entry):
        self._call("replace_neighbour")
        self.neighbours[(entry.ifindex, entry.ip)] = entry

    def delete_neighbour(self, entry):
        self._call("delete_neighbour")
        self.neighbours.pop((entry.ifindex, entry.ip), None)

    def replace_fdb(self, entry):
        self._call("replace_fdb")
        self.fdb[(entry.ifindex, entry.mac)] = entry

    def delete_fdb(self, entry):
        self._call("delete_fdb")
        self.fdb.pop((entry.ifindex, entry.mac), None)

    def replace_route(self, route):
        self._call("replace_route")
        self.routes[route.dst] = route

    def delete_route(self, route):
        self._call("delete_route")
        self.routes.pop(route.dst, None)


def lease(i: int, *, ip: int | None = None, mac: int | None = None, kind: str = "vxlan") -> Lease:
    return Lease(
        f"n{i}",
        IPv4Network(f"10.244.{i}.0/24"),
        IPv4Address(f"192.0.2.{ip or 10 + i}"),
        kind,
        VxlanData(1, f"02:00:00:00:00:{mac or i:02x}"),
    )


def backend(direct: frozenset[IPv4Address] = frozenset()) -> VxlanBackend:
    return VxlanBackend(
        v4=VxlanDevice(DEV, 1450, VxlanData(1, "02:00:00:00:00:01")),
        v6=None,
        direct_link=lambda ip: 2 if ip in direct else None,
    )


def test_batches_add_and_remove_exactly_one_triple_per_node() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel, backend())
    watcher = LeaseWatcher(lease(1).key)
    outcome = reconciler.apply_batch(watcher.reset([lease(1), lease(2), lease(3)]), watcher.leases)
    assert outcome.errors == [] and outcome.changes == 6
    assert kernel.calls[:3] == ["replace_neighbour"] * 2 + ["replace_fdb"]
    assert kernel.routes[IPv4Network("10.244.2.0/24")] == GatewayRoute(
        IPv4Network("10.244.2.0/24"), IPv4Address("10.244.2.0"), DEV, onlink=True
    )
    assert kernel.fdb[(DEV, "02:00:00:00:00:03")].dst == IPv4Address("192.0.2.13")

    reconciler.apply_batch(watcher.update([removed(lease(2))]), watcher.leases)
    assert set(kernel.routes) == {IPv4Network("10.244.3.0/24")}
    assert len(kernel.neighbours) == len(kernel.fdb) == 1


def test_a_node_with_a_new_mac_loses_its_old_fdb_entry() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel, backend())
    watcher = LeaseWatcher(lease(1).key)
    reconciler.apply_batch(watcher.reset([lease(2)]), watcher.leases)
    reconciler.apply_batch(watcher.update([added(lease(2, mac=0x22))]), watcher.leases)
    assert list(kernel.fdb) == [(DEV, "02:00:00:00:00:22")]
    assert kernel.neighbours[(DEV, IPv4Address("10.244.2.0"))].mac == "02:00:00:00:00:22"


def test_reconcile_repairs_and_removes_stale_entries() -> None:
    kernel = FakeKernel()
    reconciler = Reconciler(kernel, backend())
    reconciler.reconcile([lease(2), lease(3)])
    del kernel.routes[IPv4Network("10.244.2.0/24")]  # someone deleted it
    outcome = reconciler.reconcile([lease(2)])  # n3 left while nobody watched
    assert [str(r.dst) for r in outcome.plan.replace_routes] == ["10.244.2.0/24"]
    assert [str(r.dst) for r in outcome.plan.delete_routes] == ["10.244.3.0/24"]
    assert set(kernel.routes) == {IPv4Network("10.244.2.0/24")}
    assert reconciler.reconcile([lease(2)]).changes == 0


def test_leases_of_another_backend_are_ignored() -> None:
    kernel = FakeKernel()
    Reconciler(kernel, backend()).reconcile([lease(2, kind="host-gw")])
    assert kernel.calls == []


def test_direct_routing_uses_the_public_ip_without_encapsulation() -> None:
    kernel = FakeKernel()
    Reconciler(kernel, backend(direct=frozenset({IPv4Address("192.0.2.12")}))).reconcile([lease(2)])
    assert list(kernel.routes.values()) == [
        GatewayRoute(IPv4Network("10.244.2.0/24"), IPv4Address("192.0.2.12"), 2)
    ]
    assert kernel.neighbours == {} and kernel.fdb == {}


def test_a_failing_entry_is_reported_and_the_others_still_applied() -> None:
    kernel = FakeKernel()
    kernel.broken.add("replace_fdb")
    outcome = Reconciler(kernel, backend()).reconcile([lease(2), lease(3)])
    assert len(outcome.errors) == 2 and "replace_fdb" in outcome.errors[0]
    assert len(kernel.routes) == 2 and len(kernel.neighbours) == 2
