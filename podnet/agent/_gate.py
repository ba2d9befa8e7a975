"""A gate between the CNI requests the agent serves and its garbage collector.

Requests pass together (shared); GC passes alone (exclusive): it waits for the requests
in flight to finish, and new ones wait for it. The spec asks runtimes never to run GC
alongside ADD or DEL of the same network; for podnet the agent is where both meet. New
requests wait as soon as GC asks, so a steady stream of pods cannot starve it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._active:
                self._cond.wait()
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
