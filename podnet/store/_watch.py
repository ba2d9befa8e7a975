"""A watch fed by a background thread: the backend's pump reads changes (polling sqlite,
streaming from etcd) and hands them over through a queue, so callers stay synchronous."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Self

from podnet.store._base import WatchEvent

_CLOSED = object()
# How long close() waits for the pump thread; pumps poll their stop flag far more often.
_JOIN_TIMEOUT = 5.0


class ThreadedWatch:
    """Runs `pump(watch)` in a daemon thread. The pump calls `emit` with batches of events
    in revision order and returns (or raises) when `stopped` is set; `on_close` lets a
    backend interrupt a blocking read (e.g. shut a socket down)."""

    def __init__(self, pump: Callable[[ThreadedWatch], None], *, name: str) -> None:
        self._pump = pump
        self._queue: queue.Queue[object] = queue.Queue()
        self._stopped = threading.Event()
        self._interrupters: list[Callable[[], None]] = []
        self._interrupt_lock = threading.Lock()
        self._last_revision = 0
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- pump side ---------------------------------------------------------------------
    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when the watch was closed meanwhile."""
        return self._stopped.wait(seconds)

    def emit(self, events: list[WatchEvent]) -> None:
        if events and not self._stopped.is_set():
            self._queue.put(events)

    def set_interrupter(self, interrupt: Callable[[], None] | None) -> None:
        """What close() should call to break a blocking read in progress (None: nothing)."""
        with self._interrupt_lock:
            self._interrupters = [interrupt] if interrupt is not None else []
            stopped = self._stopped.is_set()
        if stopped and interrupt is not None:
            interrupt()

    def _run(self) -> None:
        try:
            self._pump(self)
        except BaseException as exc:  # handed to the consumer, raised from get()
            if not self._stopped.is_set():
                self._queue.put(exc)

    # -- consumer side -----------------------------------------------------------------
    @property
    def last_revision(self) -> int:
        """Revision of the last event handed out; resume a new watch from this + 1."""
        return self._last_revision

    def get(self, timeout: float | None = None) -> list[WatchEvent]:
        if self._failure is not None:
            raise self._failure
        if self._stopped.is_set():
            return []
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        events: list[WatchEvent] = []
        while True:
            if item is _CLOSED:
                break
            if isinstance(item, BaseException):
                self._failure = item
                if events:  # deliver what came before; raise on the next call
                    break
                raise item
            assert isinstance(item, list)
            events.extend(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        if events:
            self._last_revision = events[-1].revision
        return events

    def __iter__(self) -> Iterator[WatchEvent]:
        while not self._stopped.is_set():
            yield from self.get(None)

    def close(self) -> None:
        if self._stopped.is_set():
            return
        with self._interrupt_lock:
            self._stopped.set()
            interrupters = list(self._interrupters)
        for interrupt in interrupters:
            try:
                interrupt()
            except OSError:
                pass  # the connection is already gone: nothing left to interrupt
        self._queue.put(_CLOSED)
        if threading.current_thread() is not self._thread:
            self._thread.join(_JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class OpenWatches:
    """The watches a store has handed out, so that closing the store stops their pumps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watches: list[ThreadedWatch] = []

    def track(self, watch: ThreadedWatch) -> ThreadedWatch:
        with self._lock:
            self._watches = [w for w in self._watches if not w.stopped] + [watch]
        return watch

    def close_all(self) -> None:
        with self._lock:
            watches, self._watches = self._watches, []
        for watch in watches:
            watch.close()
