"""sqlite-only behaviour: several processes on one file, compaction, broken files."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from podnet.store import (
    NO_LEASE,
    Compacted,
    SqliteStore,
    StoreCorrupt,
    StoreTimeout,
    StoreUnavailable,
    Watch,
    WatchEvent,
    open_store,
)

KEYS = [f"/race/{i:03d}" for i in range(100)]


def race_writer(path: str, n: int, start_at: float) -> list[str]:
    store = SqliteStore(path)
    time.sleep(max(0.0, start_at - time.time()))
    order = KEYS if n % 2 == 0 else list(reversed(KEYS))
    won = [key for key in order if store.create(key, str(n).encode()) is not None]
    store.close()
    return won


def test_create_if_absent_under_8_concurrent_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "cluster.db")
    # Each process creates the file's schema itself, at the same moment as the others.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        start_at = time.time() + 1.0
        results = pool.starmap(race_writer, [(path, n, start_at) for n in range(8)])
    winners = Counter(key for won in results for key in won)
    assert winners == Counter(KEYS)  # every key created exactly once
    store = SqliteStore(path)
    stored = {kv.key: int(kv.value) for kv in store.list("/race/").items}
    for n, won in enumerate(results):
        assert all(stored[key] == n for key in won)
    store.close()


def test_old_history_is_compacted(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "c.db"), retain_events=10)
    for i in range(30):
        store.create(f"/c/{i:02d}", b"x")
    head = store.list("/c/").revision
    with pytest.raises(Compacted) as caught:
        store.watch("/c/", from_revision=2)
    assert caught.value.compact_revision >= 2
    # The retained tail can still be replayed.
    with store.watch("/c/", from_revision=head - 5) as watch:
        events: list[WatchEvent] = []
        deadline = time.monotonic() + 5
        while len(events) < 6 and time.monotonic() < deadline:
            events += watch.get(0.05)
    assert [e.key for e in events] == [f"/c/{i:02d}" for i in range(24, 30)]
    store.close()


def test_a_file_that_is_not_a_database_is_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreCorrupt, match="not a database"):
        open_store(f"sqlite://{path}")


def test_an_unusable_path_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite://{blocker}/sub/cluster.db")


def test_lease_expires_with_only_a_watcher_running(tmp_path: Path) -> None:
    """No process writes after the grant: the watch's poller expires the lease."""
    path = str(tmp_path / "l.db")
    writer = SqliteStore(path)
    lease = writer.grant(1)
    writer.create("/l/k", b"x", lease=lease)
    writer.close()
    watcher = SqliteStore(path)
    with watcher.watch("/l/") as watch:
        events: list[WatchEvent] = []
        deadline = time.monotonic() + 4
        while not events and time.monotonic() < deadline:
            events = watch.get(0.1)
    assert [(e.type, e.key) for e in events] == [("DELETE", "/l/k")]
    watcher.close()


def test_a_read_expires_due_leases_first(tmp_path: Path) -> None:
    """No watch, no write after the grant: the read itself finds the lease due, expires
    it (its DELETE is in the log) and answers without the key."""
    store = SqliteStore(str(tmp_path / "r.db"))
    lease = store.grant(1)
    store.create("/r/gone", b"x", lease=lease)
    store.create("/r/kept", b"y")
    assert store.get("/r/gone") is not None
    time.sleep(1.2)
    assert store.get("/r/gone") is None
    listing = store.list("/r/")
    assert [kv.key for kv in listing.items] == ["/r/kept"]
    with store.watch("/r/", from_revision=1) as watch:
        events = watch.get(2.0)
    assert [(e.type, e.key) for e in events][-1] == ("DELETE", "/r/gone")
    store.close()


def test_the_store_file_and_its_wal_and_shm_are_0600(tmp_path: Path) -> None:
    """Cluster state (tokens, leases) is no one else's to read (issue 13)."""
    import os
    import stat

    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "store.db"
        store = SqliteStore(str(path))
        try:
            store.create("/k", b"v")
            for name in ("store.db", "store.db-wal", "store.db-shm"):
                mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
                assert mode == 0o600, (name, oct(mode))
        finally:
            store.close()
    finally:
        os.umask(old_umask)


def test_an_older_store_file_readable_by_others_is_tightened(tmp_path: Path) -> None:
    import os
    import stat

    path = tmp_path / "store.db"
    SqliteStore(str(path)).close()
    os.chmod(path, 0o644)
    store = SqliteStore(str(path))
    try:
        assert store.get("/missing") is None
    finally:
        store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _write_from_another_process(path: str, key: str, value: bytes) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from podnet.store import SqliteStore; "
            "s = SqliteStore(sys.argv[1]); s.create(sys.argv[2], sys.argv[3].encode()); s.close()",
            path,
            key,
            value.decode(),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@contextmanager
def _watching_after_a_first_write(tmp_path: Path) -> Iterator[tuple[SqliteStore, Watch]]:
    """A store with one key written, and a watch that has replayed it (its pump then
    waits for a wake-up or its next poll)."""
    store = SqliteStore(str(tmp_path / "w.db"))
    try:
        first = store.create("/w/first", b"0")
        assert first is not None
        with store.watch("/w/", from_revision=first.mod_revision) as watch:
            assert [e.key for e in watch.get(10.0)] == ["/w/first"]
            yield store, watch
    finally:
        store.close()


def test_commits_wake_the_watches_without_a_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server makes every write of its store: its watch cache hears of its own
    commits at once. Another process's commits wake it too (inotify on the store's files).
    With the polls stretched to a minute, only the wake-ups can deliver in time."""
    monkeypatch.setattr("podnet.store._sqlite.WATCH_POLL_SECONDS", 60.0)
    monkeypatch.setattr("podnet.store._sqlite.LEASE_CHECK_SECONDS", 60.0)
    with _watching_after_a_first_write(tmp_path) as (store, watch):
        _write_from_another_process(store.path, "/w/theirs", b"1")
        assert [(e.type, e.key) for e in watch.get(10.0)] == [("PUT", "/w/theirs")]
        store.create("/w/ours", b"2")
        assert [(e.type, e.key) for e in watch.get(10.0)] == [("PUT", "/w/ours")]


def test_without_inotify_other_processes_commits_wait_for_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where inotify is refused, the watches poll: another process's commit is seen at
    the next poll (stretched to a minute here, so: not yet), this store's own at once."""

    def refused(*_: object) -> None:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr("podnet.store._sqlite.FileWaker", refused)
    monkeypatch.setattr("podnet.store._sqlite.WATCH_POLL_SECONDS", 60.0)
    with _watching_after_a_first_write(tmp_path) as (store, watch):
        _write_from_another_process(store.path, "/w/theirs", b"1")
        assert watch.get(1.0) == []  # not seen before the next poll
        store.create("/w/ours", b"2")
        events: list[WatchEvent] = []
        deadline = time.monotonic() + 10
        while len(events) < 2 and time.monotonic() < deadline:
            events += watch.get(0.5)
        assert [(e.type, e.key) for e in events] == [("PUT", "/w/theirs"), ("PUT", "/w/ours")]


def test_writers_that_queue_share_one_commit_and_fail_alone(tmp_path: Path) -> None:
    """Group commit: writes that come while another is under way join one transaction
    (one fsync for all); a write that fails in it rolls back alone."""
    store = SqliteStore(str(tmp_path / "g.db"))
    commits: list[str] = []
    store._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    failures: list[Exception] = []

    def write(i: int) -> None:
        try:
            # Lease 999 does not exist: that create fails (LeaseNotFound), the others not.
            store.create(f"/g/{i}", b"x", lease=999 if i == 3 else NO_LEASE)
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    with store._lock:  # a writer under way: the others queue behind it
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while store._queued < 8:
            assert time.monotonic() < deadline, "the writers did not queue"
            time.sleep(0.01)
    for thread in threads:
        thread.join(30)
    assert [type(f).__name__ for f in failures] == ["LeaseNotFound"]
    listing = store.list("/g/")
    assert sorted(kv.key for kv in listing.items) == [f"/g/{i}" for i in range(8) if i != 3]
    assert sorted(kv.mod_revision for kv in listing.items) == list(
        range(listing.revision - 6, listing.revision + 1)
    )  # one revision each, none lost to the failed one
    assert 1 <= len(commits) < 7  # fewer commits (fsyncs) than writes
    store.close()


def test_a_writer_whose_batch_never_commits_hears_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer joined to a batch waits for its COMMIT with a deadline: a leader stuck
    past it gives a StoreTimeout (outcome unknown: the write may still be committed)."""
    from podnet.store import _sqlite

    store = SqliteStore(str(tmp_path / "t.db"))
    monkeypatch.setattr(_sqlite, "BATCH_DEADLINE_SECONDS", 0.2)
    store._conn.execute("BEGIN IMMEDIATE")
    stuck = _sqlite._Batch()
    store._batch = stuck  # a leader that never commits
    with pytest.raises(StoreTimeout, match="did not end within 0.2s"):
        store.create("/t/a", b"x")
    store._batch = None
    store._conn.execute("COMMIT")  # the leader comes back after all
    stuck.done.set()
    assert store.get("/t/a") is not None
    store.close()


def _inotify_instances() -> int:
    return sum(
        os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
        for fd in os.listdir("/proc/self/fd")
        if os.path.exists(f"/proc/self/fd/{fd}")
    )


def test_the_stores_of_a_process_share_one_inotify_instance(tmp_path: Path) -> None:
    """Instances are counted per user and shared with every other program of it (128 by
    default): twenty stores with watches take one between them, woken each of its own."""
    before = _inotify_instances()
    stores = [SqliteStore(str(tmp_path / f"s{i % 4}" / f"{i}.db")) for i in range(20)]
    try:
        watches = [store.watch("/w/") for store in stores]
        assert _inotify_instances() - before <= 1
        for i, store in enumerate(stores):
            _write_from_another_process(store.path, f"/w/{i}", b"x")
        for i, watch in enumerate(watches):
            assert [e.key for e in watch.get(10.0)] == [f"/w/{i}"]
            watch.close()
    finally:
        for store in stores:
            store.close()
