"""Hearing that another process committed to a sqlite store, at once: inotify on the
store's directory, filtered to its database and WAL files (a commit writes the WAL; a
checkpoint the database). The watches of a store then need not poll every few
milliseconds to see other processes' commits; they only look again when woken, or when
a lease may be due."""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

from podnet._inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO, IN_ONLYDIR, Inotify

_MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_ONLYDIR
# How often the thread looks whether it is to stop (close() also wakes it at once).
_STOP_CHECK_MS = 1000


class FileWaker:
    """Calls `on_change` (from a thread of its own) whenever `path` or its WAL is written.
    OSError from the constructor where inotify is refused (no instances left, say): the
    caller then polls."""

    def __init__(self, path: str, on_change: Callable[[], None]) -> None:
        directory, base = os.path.split(os.path.abspath(path))
        self._names = {base, f"{base}-wal"}
        self._on_change = on_change
        self._inotify = Inotify()
        try:
            self._inotify.add_watch(directory, _MASK)
            self._stop_read, self._stop_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            self._inotify.close()
            raise
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sqlite-waker {base}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._inotify.fileno(), select.POLLIN)
        poller.register(self._stop_read, select.POLLIN)
        while not self._closing:
            poller.poll(_STOP_CHECK_MS)
            if self._closing:
                return
            if any(event.name in self._names for event in self._inotify.read()):
                self._on_change()

    def close(self) -> None:
        self._closing = True
        os.write(self._stop_write, b"x")
        self._thread.join(5)
        self._inotify.close()
        os.close(self._stop_read)
        os.close(self._stop_write)
