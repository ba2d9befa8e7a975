from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from podnet.agent import Entries, Plan, plan, plan_removal
from podnet.netlink import FdbEntry, GatewayRoute, Neighbour

DEV = 5
MAC2, MAC3 = "02:00:00:00:00:02", "02:00:00:00:00:03"


def route(i: int, via: str | None = None, dev: int = DEV) -> GatewayRoute:
    return GatewayRoute(
        IPv4Network(f"10.244.{i}.0/24"), IPv4Address(via or f"10.244.{i}.0"), dev, onlink=True
    )


def neigh(i: int, mac: str) -> Neighbour:
    return Neighbour(DEV, IPv4Address(f"10.244.{i}.0"), mac)


def fdb(mac: str, ip: str) -> FdbEntry:
    return FdbEntry(DEV, mac, IPv4Address(ip))


def entries(*items) -> Entries:
    return Entries(
        routes=frozenset(i for i in items if isinstance(i, GatewayRoute)),
        neighbours=frozenset(i for i in items if isinstance(i, Neighbour)),
        fdb=frozenset(i for i in items if isinstance(i, FdbEntry)),
    )


def test_nothing_to_do_when_equal() -> None:
    same = entries(route(2), neigh(2, MAC2), fdb(MAC2, "192.0.2.11"))
    assert not plan(same, same)


def test_missing_entries_are_replaced_in_dependency_order() -> None:
    wanted = entries(route(2), neigh(2, MAC2), fdb(MAC2, "192.0.2.11"))
    assert plan(wanted, Entries()) == Plan(
        replace_neighbours=(neigh(2, MAC2),),
        replace_fdb=(fdb(MAC2, "192.0.2.11"),),
        replace_routes=(route(2),),
    )


def test_changed_values_are_replaced_not_deleted() -> None:
    present = entries(route(2), neigh(2, MAC2), fdb(MAC2, "192.0.2.11"))
    wanted = entries(route(2, via="192.0.2.11", dev=2), neigh(2, MAC3), fdb(MAC2, "192.0.2.99"))
    result = plan(wanted, present)
    assert result.replace_routes == (route(2, via="192.0.2.11", dev=2),)
    assert result.replace_neighbours == (neigh(2, MAC3),)
    assert result.replace_fdb == (fdb(MAC2, "192.0.2.99"),)
    assert (result.delete_routes, result.delete_neighbours, result.delete_fdb) == ((), (), ())


def test_entries_nobody_wants_are_deleted() -> None:
    present = entries(route(2), route(3), neigh(3, MAC3), fdb(MAC3, "192.0.2.12"))
    result = plan(entries(route(2)), present)
    assert result == Plan(
        delete_routes=(route(3),),
        delete_neighbours=(neigh(3, MAC3),),
        delete_fdb=(fdb(MAC3, "192.0.2.12"),),
    )


def test_removal_spares_keys_still_wanted() -> None:
    gone = entries(route(2), neigh(2, MAC2), fdb(MAC2, "192.0.2.11"))
    # the subnet moved to a new node: same route and neighbour keys, new MAC
    still = entries(route(2), neigh(2, MAC3), fdb(MAC3, "192.0.2.12"))
    assert plan_removal(gone, still) == Plan(delete_fdb=(fdb(MAC2, "192.0.2.11"),))


def test_union_and_len() -> None:
    both = entries(route(2)) | entries(neigh(2, MAC2))
    assert len(both) == 2
    assert Entries.union([entries(route(2)), entries(route(3)), Entries()]) == entries(
        route(2), route(3)
    )
