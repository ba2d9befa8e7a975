"""Hearing that another process committed to a sqlite store, at once: inotify on the
store's directory, filtered to its database and WAL files (a commit writes the WAL; a
checkpoint the database). The watches of a store then need not poll every few
milliseconds to see other processes' commits; they only look again when woken, or when
a lease may be due.

One inotify instance and one thread serve every store of the process: instances are
counted per user (fs.inotify.max_user_instances, 128 by default, shared with every other
program of that user), so a process with many stores must not take one each."""

from __future__ import annotations

import itertools
import os
import select
import sys
import threading
import time
from collections.abc import Callable

from podnet._inotify import (
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVED_TO,
    IN_ONLYDIR,
    Event,
    Inotify,
)

_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR


class _Subscription:
    __slots__ = ("wd", "names", "on_change")

    def __init__(self, wd: int, names: frozenset[str], on_change: Callable[[], None]) -> None:
        self.wd = wd
        self.names = names
        self.on_change = on_change


class _ProcessWatcher:
    """The process's one inotify instance and the thread that reads it."""

    def __init__(self) -> None:
        self._inotify = Inotify()
        self._lock = threading.Lock()
        self._subscriptions: dict[int, _Subscription] = {}
        self._ids = itertools.count()
        threading.Thread(target=self._run, name="sqlite-file-waker", daemon=True).start()

    def subscribe(self, path: str, on_change: Callable[[], None]) -> int:
        directory, base = os.path.split(os.path.abspath(path))
        with self._lock:
            wd = self._inotify.add_watch(directory, _MASK)  # the same wd for the same dir
            token = next(self._ids)
            names = frozenset((base, f"{base}-wal"))
            self._subscriptions[token] = _Subscription(wd, names, on_change)
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            gone = self._subscriptions.pop(token, None)
            if gone is not None and all(s.wd != gone.wd for s in self._subscriptions.values()):
                self._inotify.rm_watch(gone.wd)  # the directory's last store

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._inotify.fileno(), select.POLLIN)
        while True:
            poller.poll()
            try:
                events = self._inotify.read()
            except OSError as exc:  # not expected; the stores' 0.1 s look still delivers
                print(f"sqlite store: reading inotify failed: {exc}", file=sys.stderr)
                time.sleep(1)
                continue
            with self._lock:
                subscriptions = list(self._subscriptions.values())
            for sub in subscriptions:
                if any(_concerns(sub, event) for event in events):
                    sub.on_change()


def _concerns(sub: _Subscription, event: Event) -> bool:
    # IN_IGNORED: the directory is gone; its stores look for themselves
    return event.wd == sub.wd and (event.name in sub.names or bool(event.mask & IN_IGNORED))


_watcher: _ProcessWatcher | None = None
_watcher_lock = threading.Lock()


class FileWaker:
    """Calls `on_change` (from the process's waker thread) whenever `path` or its WAL is
    written, until closed. OSError from the constructor where inotify is refused (no
    instances or watches left, say): the caller then polls."""

    def __init__(self, path: str, on_change: Callable[[], None]) -> None:
        global _watcher
        with _watcher_lock:
            if _watcher is None:
                _watcher = _ProcessWatcher()
            self._watcher = _watcher
        self._token: int | None = self._watcher.subscribe(path, on_change)

    def close(self) -> None:
        if self._token is not None:
            self._watcher.unsubscribe(self._token)
            self._token = None
