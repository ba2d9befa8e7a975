"""A gate between the CNI requests the agent serves and its garbage collector.

Requests pass together (shared); GC passes alone (exclusive): it waits for the requests
in flight to finish, and new ones wait for it. The spec asks runtimes never to run GC
alongside ADD or DEL of the same network; for podnet the agent is where both meet. New
requests wait as soon as GC asks, so a steady stream of pods cannot starve it.

Both sides wait with a deadline (GateBusy): a request stuck in flight makes GC give up
its round (and let the requests queued behind it through) instead of stalling the node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class GateBusy(Exception):
    """The gate did not open within the deadline."""


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False

    @contextmanager
    def shared(self, timeout: float | None = None) -> Iterator[None]:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._exclusive, timeout):
                raise GateBusy(f"the garbage collector held the gate for {timeout:g}s")
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[None]:
        """Pass alone; GateBusy when that takes longer than `timeout` seconds (the
        requests held back meanwhile then pass)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(lambda: not self._exclusive, timeout):
                raise GateBusy(f"another exclusive holder kept the gate for {timeout:g}s")
            self._exclusive = True
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not self._cond.wait_for(lambda: not self._active, remaining):
                self._exclusive = False
                self._cond.notify_all()
                raise GateBusy(f"{self._active} request(s) still in flight after {timeout:g}s")
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    @property
    def active(self) -> int:
        """Holders of the shared side right now."""
        with self._cond:
            return self._active
