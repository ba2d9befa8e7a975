"""The agent's memory of host-local's reservation directories, kept current by inotify.

ADD and DEL need every reservation of the network (which addresses are taken, which one
the attachment already holds), and they read them under the network's lock, so the time
spent reading holds every other ADD of the node back. Reading the directory again each
time costs a listing plus a stat (or open and read) per reservation: O(pods) under the
lock. Here a process that serves many pods (the agent) watches each network's directory
once and, under the lock, only reads the kernel's queue of what changed since: names
created, written, moved or removed. fsnotify queues an event before the syscall that
caused it returns, so whatever a writer did before it let the lock go (ours or the
reference's, which takes the same flock) is in the queue when the next holder reads it.

A name created or written is read again (once, on next use); a name removed is
forgotten; a lost queue (overflow), a directory removed, moved or replaced: read whole
again. One assumption, which podnet and the reference both hold to: a reservation's
content is written before or under its own name, never through another hard link
(ours are linked from a temp file already written, fsync'd and never touched again).

Used only by the agent (the in-process plugin reads each directory once anyway): the
in-process plugin never imports it (nor ctypes, through podnet._inotify)."""

from __future__ import annotations

import os
import threading

from podnet._inotify import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    Inotify,
)
from podnet.plugins.ipam.host_local._store import (
    TEMP_PREFIX,
    Reservation,
    address_of,
    owner_of,
    read_small,
)

_APPEARED = IN_CREATE | IN_MOVED_TO
_WRITTEN = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB
_GONE = IN_DELETE | IN_MOVED_FROM
_WATCH_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
_MASK = _APPEARED | _WRITTEN | _GONE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR


class _Directory:
    """One watched directory: its reservations by name (None: to be read again) and the
    temp files in it."""

    __slots__ = ("identity", "wd", "entries", "temps", "whole")

    def __init__(self, identity: tuple[int, int], wd: int) -> None:
        self.identity = identity
        self.wd = wd
        self.entries: dict[str, Reservation | None] = {}
        self.temps: set[str] = set()
        self.whole = False  # False until listed whole after the watch was set


class ReservationCache:
    """One per process (podnet.cni.HostState). Every method takes the cache's own lock:
    the agent's threads serve different networks at once, and one thread's read of the
    queue applies the events of every network."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inotify: Inotify | None = None
        self._unavailable = False
        self._by_path: dict[str, _Directory] = {}
        self._by_wd: dict[int, _Directory] = {}

    def listing(self, path: str, directory: int) -> tuple[list[Reservation], list[str]] | None:
        """The reservations and the temp files of the directory open as `directory` (found
        at `path`), as a full read would find them now; None where inotify cannot serve
        (then read it whole). Call it with the network's lock held."""
        with self._lock:
            if not self._ready():
                return None
            self._drain()
            identity = _identity(os.fstat(directory))
            watched = self._by_path.get(path)
            if watched is None or watched.identity != identity:
                watched = self._watch(path, identity)
                if watched is None:
                    return None
            if not watched.whole:
                self._list_whole(watched, directory)
            return self._read(watched, directory), sorted(watched.temps)

    def close(self) -> None:
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
            self._inotify = None
            self._by_path.clear()
            self._by_wd.clear()

    def _ready(self) -> bool:
        if self._inotify is not None:
            return True
        if self._unavailable:
            return False
        try:
            self._inotify = Inotify()
        except OSError:  # out of inotify instances, say: read directories whole
            self._unavailable = True
            return False
        return True

    def _watch(self, path: str, identity: tuple[int, int]) -> _Directory | None:
        assert self._inotify is not None
        try:
            wd = self._inotify.add_watch(path, _MASK)
        except OSError:
            return None  # out of watches (ENOSPC), say: read this one whole
        try:
            if _identity(os.stat(path)) != identity:
                return None  # replaced while we looked: the caller reads the one it opened
        except OSError:
            return None
        watched = self._by_wd.get(wd)  # another path to the same directory shares the watch
        if watched is None or watched.identity != identity:
            watched = _Directory(identity, wd)
            self._by_wd[wd] = watched
        self._by_path[path] = watched
        return watched

    def _drain(self) -> None:
        assert self._inotify is not None
        for event in self._inotify.read():
            if event.mask & IN_Q_OVERFLOW:
                for each in self._by_wd.values():
                    each.whole = False  # events were lost: list every directory again
                continue
            watched = self._by_wd.get(event.wd)
            if watched is None:
                continue
            if event.mask & _WATCH_LOST:
                self._forget(watched)
                continue
            if event.name.startswith(TEMP_PREFIX):
                if event.mask & _APPEARED:
                    watched.temps.add(event.name)
                elif event.mask & _GONE:
                    watched.temps.discard(event.name)
            elif address_of(event.name) is not None:
                if event.mask & _GONE:
                    watched.entries.pop(event.name, None)
                else:
                    watched.entries[event.name] = None

    def _forget(self, watched: _Directory) -> None:
        assert self._inotify is not None
        self._inotify.rm_watch(watched.wd)  # gone already: EINVAL, fine
        self._by_wd.pop(watched.wd, None)
        for path in [p for p, w in self._by_path.items() if w is watched]:
            del self._by_path[path]

    def _list_whole(self, watched: _Directory, directory: int) -> None:
        # The watch is set before this listing: a change made during it is also queued,
        # and applying it again later is harmless.
        names = os.listdir(directory)
        watched.entries = {name: None for name in names if address_of(name) is not None}
        watched.temps = {name for name in names if name.startswith(TEMP_PREFIX)}
        watched.whole = True

    def _read(self, watched: _Directory, directory: int) -> list[Reservation]:
        found = []
        for name, reservation in list(watched.entries.items()):
            if reservation is None:
                address = address_of(name)
                assert address is not None  # only address names are entries
                try:
                    reservation = Reservation(address, name, owner_of(read_small(name, directory)))
                except (FileNotFoundError, IsADirectoryError):
                    watched.entries.pop(name, None)
                    continue
                watched.entries[name] = reservation
            found.append(reservation)
        return found


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)
