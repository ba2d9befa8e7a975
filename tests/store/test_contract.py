"""The store contract: every backend gives the same answers to the same calls."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from podnet.store import LeaseNotFound, Store, Watch, WatchEvent
from tests.backends import Backend


def collect(watch: Watch, count: int, timeout: float = 5.0) -> list[WatchEvent]:
    """At least `count` events, or whatever arrived before `timeout`."""
    events: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events += watch.get(0.05)
    return events


def test_get_missing_key_is_none(store: Store) -> None:
    assert store.get("/nope") is None


def test_create_if_absent_writes_once(store: Store) -> None:
    first = store.create("/k", b"one")
    assert first is not None
    assert first.value == b"one"
    assert first.create_revision == first.mod_revision

    assert store.create("/k", b"two") is None
    current = store.get("/k")
    assert current == first


def test_update_is_compare_and_swap_on_mod_revision(store: Store) -> None:
    created = store.create("/k", b"v1")
    assert created is not None
    updated = store.update("/k", b"v2", revision=created.mod_revision)
    assert updated is not None
    assert updated.mod_revision > created.mod_revision
    assert updated.create_revision == created.create_revision
    assert store.get("/k") == updated

    # A writer holding the old revision loses, and writes nothing.
    assert store.update("/k", b"stale", revision=created.mod_revision) is None
    assert store.get("/k") == updated
    # Updating a key that does not exist fails too.
    assert store.update("/missing", b"x", revision=created.mod_revision) is None
    assert store.get("/missing") is None


def test_delete_plain_and_if_revision(store: Store) -> None:
    kv = store.create("/k", b"v")
    assert kv is not None
    assert store.delete("/k", revision=kv.mod_revision + 100) is False
    assert store.get("/k") is not None
    assert store.delete("/k", revision=kv.mod_revision) is True
    assert store.get("/k") is None
    assert store.delete("/k") is False

    store.create("/k", b"again")
    assert store.delete("/k") is True
    assert store.get("/k") is None


def test_recreated_key_gets_a_new_create_revision(store: Store) -> None:
    first = store.create("/k", b"v")
    assert first is not None
    store.delete("/k")
    second = store.create("/k", b"v")
    assert second is not None
    assert second.create_revision > first.create_revision


def test_list_prefix_is_bytewise_and_sorted(store: Store) -> None:
    for key in ["/a/2", "/a/1", "/a/10", "/a0", "/ab", "/b/1", "/a/ü", "/a"]:
        assert store.create(key, key.encode()) is not None
    listing = store.list("/a/")
    assert [kv.key for kv in listing.items] == ["/a/1", "/a/10", "/a/2", "/a/ü"]
    assert [kv.value for kv in listing.items] == [b"/a/1", b"/a/10", b"/a/2", "/a/ü".encode()]
    assert listing.revision >= max(kv.mod_revision for kv in listing.items)

    everything = store.list("")
    assert len(everything.items) == 8
    assert store.list("/zzz").items == []


def test_revisions_are_global_and_increasing(store: Store) -> None:
    revisions = []
    for i in range(5):
        kv = store.create(f"/r/{i}", b"x")
        assert kv is not None
        revisions.append(kv.mod_revision)
    assert revisions == sorted(revisions)
    assert len(set(revisions)) == 5
    assert store.list("/r/").revision == revisions[-1]


def test_watch_from_listing_revision_sees_later_changes_in_order(store: Store) -> None:
    store.create("/w/before", b"0")
    listing = store.list("/w/")
    with store.watch("/w/", from_revision=listing.revision + 1) as watch:
        a = store.create("/w/a", b"1")
        assert a is not None
        store.create("/other/x", b"not watched")
        store.update("/w/a", b"2", revision=a.mod_revision)
        store.delete("/w/before")
        events = collect(watch, 3)
    assert [(e.type, e.key, e.value) for e in events] == [
        ("PUT", "/w/a", b"1"),
        ("PUT", "/w/a", b"2"),
        ("DELETE", "/w/before", b""),
    ]
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions)
    assert watch.last_revision == revisions[-1]


def test_watch_replays_history_from_an_old_revision(store: Store) -> None:
    first = store.create("/h/1", b"a")
    assert first is not None
    store.create("/h/2", b"b")
    store.delete("/h/1")
    with store.watch("/h/", from_revision=first.mod_revision) as watch:
        events = collect(watch, 3)
    assert [(e.type, e.key) for e in events] == [
        ("PUT", "/h/1"),
        ("PUT", "/h/2"),
        ("DELETE", "/h/1"),
    ]


def test_watch_without_revision_starts_after_now(store: Store) -> None:
    store.create("/n/old", b"x")
    with store.watch("/n/") as watch:
        store.create("/n/new", b"y")
        events = collect(watch, 1)
        time.sleep(0.1)
        events += watch.get(0.05)
    assert [e.key for e in events] == ["/n/new"]


def test_watch_resumes_from_last_revision_without_loss_or_duplicates(store: Store) -> None:
    start = store.list("/res/").revision + 1
    for i in range(5):
        store.create(f"/res/{i}", b"x")
    watch = store.watch("/res/", from_revision=start)
    seen = collect(watch, 5)
    watch.close()  # "disconnect"
    for i in range(5, 10):
        store.create(f"/res/{i}", b"x")
    with store.watch("/res/", from_revision=watch.last_revision + 1) as resumed:
        seen += collect(resumed, 5)
    assert [e.key for e in seen] == [f"/res/{i}" for i in range(10)]


def test_watch_close_is_prompt_and_idempotent(store: Store) -> None:
    watch = store.watch("/idle/")
    started = time.monotonic()
    watch.close()
    watch.close()
    assert time.monotonic() - started < 1.0
    assert watch.get(0.01) == []


def test_iterating_a_watch_yields_events(store: Store) -> None:
    watch = store.watch("/it/")
    got: list[str] = []

    def consume() -> None:
        for event in watch:
            got.append(event.key)
            if len(got) == 3:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(3):
        store.create(f"/it/{i}", b"x")
    consumer.join(5)
    watch.close()
    assert got == ["/it/0", "/it/1", "/it/2"]


def test_lease_revoke_deletes_its_keys_with_delete_events(store: Store) -> None:
    lease = store.grant(30)
    store.create("/l/a", b"1", lease=lease)
    store.create("/l/b", b"2", lease=lease)
    store.create("/l/keep", b"3")
    assert store.get("/l/a") is not None and store.get("/l/a").lease == lease  # type: ignore[union-attr]
    with store.watch("/l/") as watch:
        store.revoke(lease)
        events = collect(watch, 2)
    assert sorted((e.type, e.key) for e in events) == [("DELETE", "/l/a"), ("DELETE", "/l/b")]
    assert [kv.key for kv in store.list("/l/").items] == ["/l/keep"]
    with pytest.raises(LeaseNotFound):
        store.keepalive(lease)
    store.revoke(lease)  # revoking a lease that is gone is a no-op


def test_lease_expiry_removes_keys_and_keepalive_keeps_them(store: Store) -> None:
    kept = store.grant(1)
    dropped = store.grant(1)
    store.create("/e/kept", b"x", lease=kept)
    store.create("/e/dropped", b"y", lease=dropped)
    with store.watch("/e/") as watch:
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert store.keepalive(kept) >= 1
            time.sleep(0.25)
        events = collect(watch, 1, timeout=3)
        assert [(e.type, e.key) for e in events] == [("DELETE", "/e/dropped")]
    assert store.get("/e/dropped") is None
    assert store.get("/e/kept") is not None
    with pytest.raises(LeaseNotFound):
        store.keepalive(dropped)


def test_writing_with_an_unknown_lease_fails(store: Store) -> None:
    with pytest.raises(LeaseNotFound):
        store.create("/u/k", b"x", lease=0x1234567)
    assert store.get("/u/k") is None
    kv = store.create("/u/k", b"x")
    assert kv is not None
    with pytest.raises(LeaseNotFound):
        store.update("/u/k", b"y", revision=kv.mod_revision, lease=0x1234567)


def test_update_can_attach_a_lease(store: Store) -> None:
    kv = store.create("/ul/k", b"x")
    assert kv is not None
    lease = store.grant(30)
    updated = store.update("/ul/k", b"y", revision=kv.mod_revision, lease=lease)
    assert updated is not None and updated.lease == lease
    store.revoke(lease)
    assert store.get("/ul/k") is None


def test_two_clients_see_each_others_writes(backend: Backend) -> None:
    a, b = backend.open(), backend.open()
    try:
        with b.watch("/x/") as watch:
            a.create("/x/1", b"from a")
            assert b.get("/x/1") is not None
            assert [e.key for e in collect(watch, 1)] == ["/x/1"]
    finally:
        a.close()
        b.close()


def test_create_if_absent_under_8_concurrent_writers(backend: Backend) -> None:
    """8 clients race to create the same 60 keys: every key is created exactly once, and
    the stored value is the winner's."""
    keys = [f"/race/{i:03d}" for i in range(60)]
    wins: dict[str, list[int]] = {key: [] for key in keys}
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(n: int) -> None:
        client = backend.open()
        try:
            barrier.wait()
            order = keys if n % 2 == 0 else list(reversed(keys))
            for key in order:
                if client.create(key, str(n).encode()) is not None:
                    wins[key].append(n)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert all(len(winners) == 1 for winners in wins.values()), wins
    check = backend.open()
    try:
        stored = {kv.key: int(kv.value) for kv in check.list("/race/").items}
        events = collect(check.watch("/race/", from_revision=1), len(keys))
    finally:
        check.close()
    assert stored == {key: winners[0] for key, winners in wins.items()}
    # The change log holds exactly one PUT per key: nothing lost, nothing duplicated.
    assert Counter(e.key for e in events) == Counter(keys)
