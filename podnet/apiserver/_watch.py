"""The watch cache: one store watch over /registry/ fanned out to every client watch, as
kube-apiserver's cacher does.

One store watch instead of one per client: a sqlite watch polls the file every few
milliseconds, so a hundred `kubectl get -w` would be a hundred pollers. The cache keeps
the current value of every key (to tell ADDED from MODIFIED, and to hand a DELETED event
the object's last state) and a window of recent changes. A client watch from a
resourceVersion inside the window replays from it; one from before the window gets 410
Expired ("too old resource version") and relists, the contract client-go's reflector
and the official Python client follow. If the store watch itself fails (its history
was compacted, the store went away), the cache relists and every open watch ends with
410, so no client silently misses a change.
"""

from __future__ import annotations

import bisect
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from podnet.apiserver._registry import decode_value, with_version
from podnet.apiserver._status import Gone, expired
from podnet.store import Store, StoreError, Watch

log = logging.getLogger(__name__)

PREFIX = "/registry/"
DEFAULT_WINDOW = 100_000
_POLL_SECONDS = 0.5
_RETRY_SECONDS = 1.0


@dataclass
class Change:
    """One change: `value` is the object's new state, or its last one for DELETED;
    `previous` its state before (None for ADDED).

    Every watch that is sent the change shares its decoding and its JSON (`decoded`,
    `encoded`, made once, on first use): with a few watchers per pod (each node's
    driver, the scheduler, `kubectl get -w`) a pod's changes were decoded and encoded
    again for each of them."""

    revision: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    value: bytes
    previous: bytes | None
    _decoded: dict[str, Any] | None = field(default=None, repr=False)
    _encoded: bytes | None = field(default=None, repr=False)
    _decoded_previous: dict[str, Any] | None = field(default=None, repr=False)

    def decoded(self) -> dict[str, Any]:
        """The object (its state after the change, or its last one), resourceVersion
        filled in. Shared by every watch: read it, never change it."""
        if self._decoded is None:
            self._decoded = decode_value(self.value, self.revision)
        return self._decoded

    def decoded_previous(self) -> dict[str, Any] | None:
        """The object before the change (None for ADDED); shared, read only."""
        if self.previous is not None and self._decoded_previous is None:
            self._decoded_previous = decode_value(self.previous, self.revision)
        return self._decoded_previous

    def encoded(self) -> bytes:
        """`decoded()` as JSON."""
        if self._encoded is None:
            self._encoded = (
                with_version(self.value, self.revision)
                or json.dumps(self.decoded(), separators=(",", ":")).encode()
            )
        return self._encoded


def _resource_of(key: str) -> str:
    """The resource part of a key or a watch's prefix ("/registry/pods/default/web" and
    "/registry/pods/" -> "pods"); "" for the whole registry."""
    return key[len(PREFIX) :].split("/", 1)[0] if key.startswith(PREFIX) else ""


class WatchCache:
    def __init__(self, store: Store, *, window: int = DEFAULT_WINDOW) -> None:
        self.store = store
        self.window = window
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        # A condition per resource, on the same lock: a change wakes only the watches of
        # its resource (and those of the whole registry, on `_cond`). With one condition,
        # every Pod change woke every watch thread (the agents' and nodeipam's on nodes
        # too), only for most to find nothing for them and wait again.
        self._resource_conds: dict[str, threading.Condition] = {}
        self._objects: dict[str, tuple[bytes, int]] = {}
        self._changes: list[Change] = []
        self._revisions: list[int] = []
        self._revision = 0
        self._floor = 0
        self._epoch = 0
        self._stopped = threading.Event()
        self._watch: Watch | None = None
        self._load()
        self._thread = threading.Thread(target=self._run, name="apiserver-watch-cache", daemon=True)
        self._thread.start()

    # -- feeding -----------------------------------------------------------------------
    def _load(self) -> None:
        listing = self.store.list(PREFIX)
        with self._cond:
            self._objects = {kv.key: (kv.value, kv.mod_revision) for kv in listing.items}
            self._changes, self._revisions = [], []
            self._revision = self._floor = listing.revision
            self._epoch += 1
            self._notify_all()
        self._watch = self.store.watch(PREFIX, from_revision=listing.revision + 1)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                assert self._watch is not None
                events = self._watch.get(timeout=_POLL_SECONDS)
            except StoreError as exc:
                if self._stopped.is_set():
                    return
                log.warning("watch cache: store watch failed (%s); relisting", exc)
                self._restart()
                continue
            if events:
                self._apply(events)

    def _restart(self) -> None:
        if self._watch is not None:
            self._watch.close()
        while not self._stopped.is_set():
            try:
                self._load()
                return
            except StoreError as exc:
                log.warning("watch cache: relist failed (%s); retrying", exc)
                self._stopped.wait(_RETRY_SECONDS)

    def _notify_all(self) -> None:
        """Wake every watch (under the lock)."""
        self._cond.notify_all()
        for cond in self._resource_conds.values():
            cond.notify_all()

    def _condition(self, prefix: str) -> threading.Condition:
        """The condition a watch of `prefix` waits on (under the lock)."""
        resource = _resource_of(prefix)
        if not resource:
            return self._cond
        cond = self._resource_conds.get(resource)
        if cond is None:
            cond = self._resource_conds[resource] = threading.Condition(self._lock)
        return cond

    def _apply(self, events: list[Any]) -> None:
        with self._cond:
            changed: set[str] = set()
            for event in events:
                changed.add(_resource_of(event.key))
                old = self._objects.get(event.key)
                previous = old[0] if old else None
                if event.type == "PUT":
                    self._objects[event.key] = (event.value, event.revision)
                    kind = "MODIFIED" if previous is not None else "ADDED"
                    change = Change(event.revision, kind, event.key, event.value, previous)
                else:
                    self._objects.pop(event.key, None)
                    if previous is None:
                        self._revision = max(self._revision, event.revision)
                        continue
                    change = Change(event.revision, "DELETED", event.key, previous, previous)
                self._changes.append(change)
                self._revisions.append(change.revision)
                self._revision = max(self._revision, event.revision)
            if len(self._changes) > self.window:
                cut = len(self._changes) - self.window // 2
                self._floor = self._revisions[cut - 1]
                del self._changes[:cut]
                del self._revisions[:cut]
            self._cond.notify_all()
            for resource in changed:
                cond = self._resource_conds.get(resource)
                if cond is not None:
                    cond.notify_all()

    # -- serving -----------------------------------------------------------------------
    @property
    def revision(self) -> int:
        with self._cond:
            return self._revision

    def snapshot(self, prefix: str) -> tuple[list[tuple[str, bytes, int]], int, int]:
        """The objects under `prefix` (key, value, mod revision), sorted, the revision they
        are current at, and the cache's epoch (see `changes_after`)."""
        with self._cond:
            items = [(k, v, rev) for k, (v, rev) in self._objects.items() if k.startswith(prefix)]
            return sorted(items), self._revision, self._epoch

    def epoch(self) -> int:
        with self._cond:
            return self._epoch

    def changes_after(
        self, revision: int, epoch: int, timeout: float, prefix: str = ""
    ) -> tuple[list[Change], int]:
        """The changes after `revision` (waiting up to `timeout` for one: of a key under
        `prefix`, when given; the others' are returned as well), and the revision the
        caller is current at afterwards. Gone (410) when `revision` is older than the
        window, or the cache relisted since the caller started (`epoch` changed)."""
        with self._cond:

            def due() -> bool:
                stale = epoch != self._epoch or revision < self._floor
                return stale or self._stopped.is_set() or self._revision > revision

            self._condition(prefix).wait_for(due, timeout)
            if epoch != self._epoch or revision < self._floor:
                raise expired(f"too old resource version: {revision} ({self._floor})")
            start = bisect.bisect_right(self._revisions, revision)
            return self._changes[start:], max(revision, self._revision)

    def check(self, revision: int) -> None:
        """Gone when a watch from `revision` cannot be served."""
        with self._cond:
            if revision < self._floor:
                raise expired(f"too old resource version: {revision} ({self._floor})")

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def close(self) -> None:
        self._stopped.set()
        with self._cond:
            self._notify_all()
        if self._watch is not None:
            self._watch.close()
        self._thread.join(timeout=5)


__all__ = ["Change", "Gone", "WatchCache"]
