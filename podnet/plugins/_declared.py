"""When a host last declared each nftables table, per namespace: the cache that spares a
pod's ADD the declaration of its plugin's table (bridge's masquerade, portmap's hostports).

A table is declared again when its entry is older than the caller's limit (which also puts
back rules someone flushed), when what the caller would declare differs from what was
declared, or once the caller found the table missing and `forget`s it. One object lives
in a host's state (podnet.cni.HostState), shared by the hosts over it.
"""

from __future__ import annotations

import time
from _thread import allocate_lock

from podnet.netlink import netns_id


class DeclaredTables:
    """(namespace device, inode, table) -> (when, declaration). Safe across threads."""

    def __init__(self) -> None:
        self._when: dict[tuple[int, int, str], tuple[float, str]] = {}
        self._lock = allocate_lock()  # threading.Lock, without importing threading (~1 ms)

    @staticmethod
    def key(table: str) -> tuple[int, int, str]:
        """The table in the calling thread's namespace."""
        return (*netns_id(), table)

    def recent(self, key: tuple[int, int, str], within: float, declaration: str = "") -> bool:
        """True when `declaration` was declared for `key` less than `within` seconds ago."""
        with self._lock:
            entry = self._when.get(key)
        if entry is None or entry[1] != declaration:
            return False
        return time.monotonic() - entry[0] < within

    def note(self, key: tuple[int, int, str], declaration: str = "") -> None:
        with self._lock:
            self._when[key] = (time.monotonic(), declaration)

    def forget(self, key: tuple[int, int, str]) -> None:
        with self._lock:
            self._when.pop(key, None)
