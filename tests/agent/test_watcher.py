from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from podnet.agent import EventKind, Lease, LeaseEvent, LeaseWatcher, VxlanData, added, removed


def lease(i: int, mac_end: int | None = None, ip_end: int | None = None) -> Lease:
    mac = f"02:00:00:00:00:{(mac_end or i):02x}"
    return Lease(
        f"n{i}",
        IPv4Network(f"10.244.{i}.0/24"),
        IPv4Address(f"192.0.2.{ip_end or 10 + i}"),
        "vxlan",
        VxlanData(1, mac),
    )


OWN = lease(1)


def kinds(batch: list[LeaseEvent]) -> list[tuple[str, str]]:
    return [(e.kind.value, e.lease.node) for e in batch]


def test_first_snapshot_adds_every_other_lease() -> None:
    watcher = LeaseWatcher(OWN.key)
    assert kinds(watcher.reset([OWN, lease(3), lease(2)])) == [("added", "n2"), ("added", "n3")]
    assert watcher.leases == [lease(2), lease(3)]


def test_later_snapshot_reports_only_differences() -> None:
    watcher = LeaseWatcher(OWN.key)
    watcher.reset([OWN, lease(2), lease(3)])
    changed = lease(3, mac_end=0x33)
    batch = watcher.reset([OWN, changed, lease(4)])
    assert kinds(batch) == [("added", "n3"), ("added", "n4"), ("removed", "n2")]
    assert batch[0].previous == lease(3)
    assert batch[1].previous is None
    assert watcher.reset([OWN, changed, lease(4)]) == []


def test_events_update_the_set() -> None:
    watcher = LeaseWatcher(OWN.key)
    watcher.reset([lease(2)])
    batch = watcher.update([added(lease(3)), removed(lease(2)), added(OWN), removed(OWN)])
    assert kinds(batch) == [("added", "n3"), ("removed", "n2")]
    assert watcher.leases == [lease(3)]


def test_repeated_or_unknown_events_are_dropped() -> None:
    watcher = LeaseWatcher(OWN.key)
    watcher.reset([lease(2)])
    assert watcher.update([added(lease(2)), removed(lease(9))]) == []


def test_a_changed_lease_carries_the_one_it_replaces() -> None:
    watcher = LeaseWatcher(OWN.key)
    watcher.reset([lease(2)])
    moved = lease(2, ip_end=99)
    [event] = watcher.update([added(moved)])
    assert event == LeaseEvent(EventKind.ADDED, moved, previous=lease(2))


def test_removed_reports_the_remembered_lease() -> None:
    watcher = LeaseWatcher(OWN.key)
    watcher.reset([lease(2)])
    # a delete event may carry a stale copy; the one the agent acted on is what must go
    [event] = watcher.update([removed(lease(2, ip_end=99))])
    assert event.lease == lease(2)
