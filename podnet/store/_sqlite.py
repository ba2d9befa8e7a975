"""The embedded store: one SQLite file shared by every process on the machine.

The schema mirrors etcd so both backends give the same answers: `meta.rev` is the global
revision, `kv` holds each key with its create/mod revisions and lease, `leases` their
expiry times, and `events` is the change log watches replay.

Concurrency rules (measured; see the dependencies notes):
- WAL journal, `isolation_level=None` (we issue BEGIN ourselves) and `BEGIN IMMEDIATE` for
  every write: a DEFERRED transaction that upgrades from read to write gets SQLITE_BUSY
  without waiting on busy_timeout, and loses writes under contention.
- Group commit: a commit waits for its fsync (synchronous=FULL, ~1-15 ms on the disks
  measured), and one process's writers were served one fsync after another. Writers of
  this store object that come while a transaction is open join it, each in a savepoint
  of its own (a write that fails rolls back alone), and one COMMIT (one fsync) makes them
  all durable; each returns once it is. The writer that opened the transaction commits
  it once the writers queued behind it have joined. A write is seen by no reader before
  it is durable: reads use a connection of their own, which also never waits on a
  writer's fsync (WAL lets readers go on beside a writer).
- Any process expires due leases, inside a write transaction, before it writes (and
  before it reads, when one is due), so expiry needs no daemon. Watches also expire
  leases while they poll, so an idle cluster still sees its DELETE events.
- A watch reads `PRAGMA data_version` (it changes when another connection commits; a few
  microseconds) and then the new rows of `events`. It looks when a commit through this
  store object wakes it, or another process's commit (inotify on the store's files, see
  _file_waker), and every LEASE_CHECK_SECONDS for due leases; without inotify it polls
  every WATCH_POLL_SECONDS. An idle API server so spends no CPU looking for changes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from podnet.store._base import NO_LEASE, KeyValue, Listing, WatchEvent, prefix_end
from podnet.store._errors import (
    Compacted,
    ExceptionMap,
    LeaseNotFound,
    StoreCorrupt,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    map_exceptions,
)
from podnet.store._file_waker import FileWaker
from podnet.store._watch import OpenWatches, ThreadedWatch

SQLITE_ERRORS: ExceptionMap = {
    sqlite3.Error: StoreError,
    sqlite3.Warning: StoreError,
    sqlite3.InterfaceError: StoreError,
    sqlite3.DatabaseError: StoreCorrupt,
    sqlite3.DataError: StoreCorrupt,
    sqlite3.IntegrityError: StoreCorrupt,
    sqlite3.InternalError: StoreCorrupt,
    sqlite3.NotSupportedError: StoreError,
    sqlite3.ProgrammingError: StoreError,
    # "database is locked", "unable to open database file", "disk I/O error"
    sqlite3.OperationalError: StoreUnavailable,
    OSError: StoreUnavailable,
}

BUSY_TIMEOUT_MS = 30_000
# The longest a commit waits for the writers queued behind it to join (they join in well
# under a millisecond each; this bounds a pathological queue).
COMMIT_WAIT_SECONDS = 0.05
# The longest a writer waits for the COMMIT of the batch it joined: the leader's wait for
# the queue, then its COMMIT, which sqlite bounds by the busy timeout; a margin past both.
BATCH_DEADLINE_SECONDS = COMMIT_WAIT_SECONDS + BUSY_TIMEOUT_MS / 1000 + 5.0
# The change log keeps this many revisions; a watch from an older revision gets Compacted.
EVENTS_RETAINED = 100_000
# How often a watch looks for other processes' commits when nothing tells it of them (no
# inotify); with inotify it looks when woken, and every LEASE_CHECK_SECONDS for due leases.
WATCH_POLL_SECONDS = 0.005
LEASE_CHECK_SECONDS = 0.1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL,
    compact_rev INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, rev, compact_rev) VALUES (1, 1, 0);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at);
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL
);
"""


class _Batch:
    """Writes committed together: `done` once the COMMIT ended, `error` if it failed."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


def _connect(path: str) -> sqlite3.Connection:
    with map_exceptions(SQLITE_ERRORS, f"sqlite {path}"):
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous=FULL")
        return conn


def _private_files(path: str) -> None:
    """The store file 0600, created so before SQLite opens it: SQLite would make it 0644,
    and gives its -wal and -shm files the database file's mode. Files of an older
    store that are looser are tightened."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except FileExistsError:
        pass
    for name in (path, path + "-wal", path + "-shm"):
        try:
            info = os.stat(name)
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.chmod(name, 0o600)


def _key_range(prefix: str) -> tuple[str, tuple[bytes, ...]]:
    """SQL condition and parameters selecting the keys under `prefix` (bytewise, as etcd)."""
    start = prefix.encode()
    end = prefix_end(start)
    if end is None:
        return "key >= ?", (start,)
    return "key >= ? AND key < ?", (start, end)


class SqliteStore:
    """The Store protocol on one SQLite file (see the module docstring)."""

    def __init__(self, path: str, *, retain_events: int = EVENTS_RETAINED) -> None:
        self.path = path
        self.retain_events = retain_events
        directory = os.path.dirname(os.path.abspath(path))
        with map_exceptions(SQLITE_ERRORS, f"sqlite {path}"):
            os.makedirs(directory, exist_ok=True)
            _private_files(path)
        self._conn = _connect(path)
        self._lock = threading.RLock()
        self._batch: _Batch | None = None  # the transaction writers are joining
        self._queued = 0  # writers waiting for the write connection
        self._queue = threading.Condition()
        self._in_write = threading.local()
        self._watches = OpenWatches()
        self._wakeups: set[threading.Event] = set()  # one per watch pump of this object
        self._wakeups_lock = threading.Lock()
        self._file_waker: FileWaker | None = None  # started with the first watch
        self._file_waker_failed = False
        with map_exceptions(SQLITE_ERRORS, f"sqlite {path}"):
            # Switching to WAL needs a moment of exclusive access; busy_timeout covers it.
            self._conn.execute("PRAGMA journal_mode=WAL")
            with self._write() as c:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
        self._reader = _connect(path)
        self._read_lock = threading.Lock()

    # -- transactions ------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write, in a savepoint of the open transaction (see the module docstring);
        returns once it is committed."""
        if getattr(self._in_write, "active", False):  # a write inside a write: one piece
            with self._savepoint() as conn:
                yield conn
            return
        with self._queue:
            self._queued += 1
        self._lock.acquire()
        with self._queue:
            self._queued -= 1
            self._queue.notify_all()
        batch = self._batch
        leader = batch is None
        try:
            if batch is None:
                with map_exceptions(SQLITE_ERRORS, f"sqlite {self.path}"):
                    self._conn.execute("BEGIN IMMEDIATE")
                self._batch = batch = _Batch()
        except BaseException:
            self._lock.release()
            raise
        try:
            self._in_write.active = True
            try:
                with self._savepoint() as conn:
                    yield conn
                    _compact(conn, self.retain_events)
            finally:
                self._in_write.active = False
                self._lock.release()
        finally:
            if leader:
                self._commit(batch)
        if not batch.done.wait(BATCH_DEADLINE_SECONDS):
            # The leader is stuck past sqlite's own busy timeout: the write may still be
            # committed later, so the caller hears "no answer in time", not "refused".
            raise StoreTimeout(
                f"sqlite {self.path}: the commit of this write did not end within "
                f"{BATCH_DEADLINE_SECONDS:g}s"
            )
        if batch.error is not None:
            raise batch.error

    @contextmanager
    def _savepoint(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        with map_exceptions(SQLITE_ERRORS, f"sqlite {self.path}"):
            conn.execute("SAVEPOINT write")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                raise
            conn.execute("RELEASE write")

    def _commit(self, batch: _Batch) -> None:
        """Commit the open transaction once the writers queued behind it have joined."""
        try:
            with self._queue:
                self._queue.wait_for(lambda: self._queued == 0, timeout=COMMIT_WAIT_SECONDS)
            with self._lock:
                self._batch = None
                try:
                    with map_exceptions(SQLITE_ERRORS, f"sqlite {self.path}"):
                        self._conn.execute("COMMIT")
                except BaseException as exc:
                    batch.error = exc
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
        finally:
            batch.done.set()
            self._wake_watches()

    def _wake_watches(self) -> None:
        with self._wakeups_lock:
            for wakeup in self._wakeups:
                wakeup.set()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read snapshot of what is committed; due leases are expired first so reads
        never show dead keys. Whether one is due is asked in the snapshot itself (one
        transaction and one turn of the reader's lock per read, not two)."""
        while True:
            with self._read_lock, map_exceptions(SQLITE_ERRORS, f"sqlite {self.path}"):
                conn = self._reader
                conn.execute("BEGIN")
                try:
                    due = conn.execute(
                        "SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1", (time.time(),)
                    ).fetchone()
                    if due is None:
                        yield conn
                        return
                finally:
                    if conn.in_transaction:
                        conn.execute("COMMIT")
            with self._write() as c:
                _expire_leases(c, time.time())

    # -- the Store protocol ------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        with self._read() as c:
            row = c.execute(
                "SELECT key, value, create_rev, mod_rev, lease FROM kv WHERE key = ?",
                (key.encode(),),
            ).fetchone()
        return _row_to_kv(row) if row else None

    def list(self, prefix: str) -> Listing:
        condition, params = _key_range(prefix)
        with self._read() as c:
            revision = _revision(c)
            rows = c.execute(
                f"SELECT key, value, create_rev, mod_rev, lease FROM kv WHERE {condition} "
                "ORDER BY key",
                params,
            ).fetchall()
        return Listing(items=[_row_to_kv(row) for row in rows], revision=revision)

    def create(self, key: str, value: bytes, *, lease: int = NO_LEASE) -> KeyValue | None:
        with self._write() as c:
            _expire_leases(c, time.time())
            if c.execute("SELECT 1 FROM kv WHERE key = ?", (key.encode(),)).fetchone():
                return None
            _check_lease(c, lease)
            rev = _put(c, key, value, create_rev=None, lease=lease)
        return KeyValue(key, value, rev, rev, lease)

    def update(
        self, key: str, value: bytes, *, revision: int, lease: int = NO_LEASE
    ) -> KeyValue | None:
        with self._write() as c:
            _expire_leases(c, time.time())
            row = c.execute(
                "SELECT create_rev, mod_rev FROM kv WHERE key = ?", (key.encode(),)
            ).fetchone()
            if row is None or row[1] != revision:
                return None
            _check_lease(c, lease)
            rev = _put(c, key, value, create_rev=row[0], lease=lease)
        return KeyValue(key, value, row[0], rev, lease)

    def delete(self, key: str, *, revision: int | None = None) -> bool:
        with self._write() as c:
            _expire_leases(c, time.time())
            row = c.execute("SELECT mod_rev FROM kv WHERE key = ?", (key.encode(),)).fetchone()
            if row is None or (revision is not None and row[0] != revision):
                return False
            _delete(c, key.encode())
        return True

    def grant(self, ttl: int) -> int:
        with self._write() as c:
            row = c.execute(
                "INSERT INTO leases (ttl, expires_at) VALUES (?, ?) RETURNING id",
                (ttl, time.time() + ttl),
            ).fetchone()
        return int(row[0])

    def keepalive(self, lease: int) -> int:
        with self._write() as c:
            _expire_leases(c, time.time())
            row = c.execute("SELECT ttl FROM leases WHERE id = ?", (lease,)).fetchone()
            if row is None:
                raise LeaseNotFound(f"lease {lease:x} not found")
            c.execute(
                "UPDATE leases SET expires_at = ? WHERE id = ?", (time.time() + row[0], lease)
            )
        return int(row[0])

    def revoke(self, lease: int) -> None:
        with self._write() as c:
            _revoke(c, lease)

    def watch(self, prefix: str, *, from_revision: int | None = None) -> ThreadedWatch:
        with self._read() as c:
            head = _revision(c)
            compact = _compact_revision(c)
        start = head + 1 if from_revision is None else from_revision
        if start <= compact:
            raise Compacted(
                f"revision {start} has been compacted (oldest kept: {compact + 1})",
                compact_revision=compact,
            )
        self._start_file_waker()
        watch = ThreadedWatch(lambda w: self._pump(w, prefix, start), name=f"sqlite-watch {prefix}")
        return self._watches.track(watch)

    def _start_file_waker(self) -> None:
        """Other processes' commits wake this store's watches too (see _file_waker)."""
        with self._wakeups_lock:
            if self._file_waker is not None or self._file_waker_failed:
                return
            try:
                self._file_waker = FileWaker(self.path, self._wake_watches)
            except OSError:
                self._file_waker_failed = True  # the watches poll instead

    def _poll_seconds(self) -> float:
        return WATCH_POLL_SECONDS if self._file_waker is None else LEASE_CHECK_SECONDS

    def close(self) -> None:
        self._watches.close_all()
        with self._wakeups_lock:
            waker, self._file_waker = self._file_waker, None
        if waker is not None:
            waker.close()
        with self._lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- watch pump --------------------------------------------------------------------
    def _pump(self, watch: ThreadedWatch, prefix: str, start: int) -> None:
        """Replay the change log from `start`, then poll for new commits until closed."""
        conn = _connect(self.path)
        condition, params = _key_range(prefix)
        next_rev = start
        last_version: int | None = None
        last_lease_check = 0.0
        wakeup = threading.Event()
        watch.set_interrupter(wakeup.set)  # close() wakes it too
        with self._wakeups_lock:
            self._wakeups.add(wakeup)
        try:
            while not watch.stopped:
                wakeup.clear()  # before reading: a commit from here on wakes the wait below
                try:
                    with map_exceptions(SQLITE_ERRORS, f"sqlite {self.path}"):
                        now = time.time()
                        if now - last_lease_check >= LEASE_CHECK_SECONDS:
                            last_lease_check = now
                            if _expire_due_leases_on(conn, now):
                                # Our own commits do not change our data_version.
                                last_version = None
                        version = conn.execute("PRAGMA data_version").fetchone()[0]
                        if version != last_version:
                            last_version = version
                            next_rev = _replay(conn, watch, condition, params, next_rev)
                except StoreUnavailable:
                    pass  # busy or briefly unreadable: poll again, the log keeps our place
                wakeup.wait(self._poll_seconds())
        finally:
            with self._wakeups_lock:
                self._wakeups.discard(wakeup)
            conn.close()


def _replay(
    conn: sqlite3.Connection,
    watch: ThreadedWatch,
    condition: str,
    params: tuple[bytes, ...],
    next_rev: int,
) -> int:
    """Emit the log entries from `next_rev` to the head; return the new `next_rev`."""
    conn.execute("BEGIN")
    try:
        head = _revision(conn)
        compact = _compact_revision(conn)
        if next_rev <= compact:
            raise Compacted(
                f"revision {next_rev} has been compacted (oldest kept: {compact + 1})",
                compact_revision=compact,
            )
        rows = conn.execute(
            f"SELECT rev, type, key, value FROM events WHERE rev >= ? AND rev <= ? "
            f"AND {condition} ORDER BY rev",
            (next_rev, head, *params),
        ).fetchall()
    finally:
        conn.execute("COMMIT")
    watch.emit([WatchEvent(row[1], bytes(row[2]).decode(), bytes(row[3]), row[0]) for row in rows])
    return max(next_rev, head + 1)


def _expire_due_leases_on(conn: sqlite3.Connection, now: float) -> bool:
    """Expire due leases through `conn`; True when it committed anything."""
    if not conn.execute("SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1", (now,)).fetchone():
        return False
    conn.execute("BEGIN IMMEDIATE")
    try:
        _expire_leases(conn, now)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


# -- statements used inside a write transaction ----------------------------------------
def _revision(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT rev FROM meta WHERE id = 1").fetchone()[0])


def _compact_revision(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT compact_rev FROM meta WHERE id = 1").fetchone()[0])


def _next_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("UPDATE meta SET rev = rev + 1 WHERE id = 1 RETURNING rev").fetchone()
    return int(row[0])


def _compact(conn: sqlite3.Connection, retain: int) -> None:
    """Drop change-log entries older than the last `retain` revisions, in batches of a
    tenth of that so the delete is rare."""
    rev, compact_rev = conn.execute("SELECT rev, compact_rev FROM meta WHERE id = 1").fetchone()
    if rev - compact_rev > retain + max(retain // 10, 1):
        keep_from = rev - retain + 1
        conn.execute("DELETE FROM events WHERE rev < ?", (keep_from,))
        conn.execute("UPDATE meta SET compact_rev = ? WHERE id = 1", (keep_from - 1,))


def _put(
    conn: sqlite3.Connection, key: str, value: bytes, *, create_rev: int | None, lease: int
) -> int:
    rev = _next_revision(conn)
    raw = key.encode()
    conn.execute(
        "INSERT OR REPLACE INTO kv (key, value, create_rev, mod_rev, lease) VALUES (?, ?, ?, ?, ?)",
        (raw, value, rev if create_rev is None else create_rev, rev, lease),
    )
    conn.execute(
        "INSERT INTO events (rev, type, key, value) VALUES (?, 'PUT', ?, ?)", (rev, raw, value)
    )
    return rev


def _delete(conn: sqlite3.Connection, raw_key: bytes) -> int:
    rev = _next_revision(conn)
    conn.execute("DELETE FROM kv WHERE key = ?", (raw_key,))
    conn.execute(
        "INSERT INTO events (rev, type, key, value) VALUES (?, 'DELETE', ?, ?)",
        (rev, raw_key, b""),
    )
    return rev


def _check_lease(conn: sqlite3.Connection, lease: int) -> None:
    if lease == NO_LEASE:
        return
    if not conn.execute("SELECT 1 FROM leases WHERE id = ?", (lease,)).fetchone():
        raise LeaseNotFound(f"lease {lease:x} not found")


def _revoke(conn: sqlite3.Connection, lease: int) -> None:
    keys = conn.execute("SELECT key FROM kv WHERE lease = ? ORDER BY key", (lease,)).fetchall()
    for (raw_key,) in keys:
        _delete(conn, bytes(raw_key))
    conn.execute("DELETE FROM leases WHERE id = ?", (lease,))


def _expire_leases(conn: sqlite3.Connection, now: float) -> None:
    due = conn.execute("SELECT id FROM leases WHERE expires_at <= ?", (now,)).fetchall()
    for (lease,) in due:
        _revoke(conn, lease)


def _row_to_kv(row: tuple[bytes, bytes, int, int, int]) -> KeyValue:
    return KeyValue(
        key=bytes(row[0]).decode(),
        value=bytes(row[1]),
        create_revision=row[2],
        mod_revision=row[3],
        lease=row[4],
    )
