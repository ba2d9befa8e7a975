"""The KV protocol every backend implements, shaped like etcd's v3 API.

One global revision counts every change. Each key remembers the revision that created it
and the one that last modified it; compare-and-swap is on that mod revision. A watch
replays the change log from a revision, so a client that lost its connection resumes
from `last seen + 1` and misses nothing (unless that history was compacted).

Keys are str (compared as UTF-8 bytes, as etcd does); values are bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

EventType = Literal["PUT", "DELETE"]
NO_LEASE = 0


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = NO_LEASE


@dataclass(frozen=True)
class Listing:
    """The keys under a prefix, and the store revision they were read at: a watch from
    `revision + 1` sees every change made after this snapshot."""

    items: list[KeyValue]
    revision: int


@dataclass(frozen=True)
class WatchEvent:
    """One change. For DELETE, `value` is empty and `revision` is the deletion's revision."""

    type: EventType
    key: str
    value: bytes
    revision: int


class Watch(Protocol):
    """A stream of changes under a prefix, in revision order, fed by a background thread.

    `get` waits up to `timeout` seconds and returns the events that arrived (maybe none);
    iteration blocks until the next event. Errors the watch cannot recover from (Compacted,
    or the store gone for good) are raised by `get` / the iterator. `close` is idempotent.
    """

    @property
    def last_revision(self) -> int: ...

    def get(self, timeout: float | None = None) -> list[WatchEvent]: ...

    def __iter__(self) -> Iterator[WatchEvent]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Store(Protocol):
    """Revisioned key-value storage: the primitives cluster state is built from."""

    def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None."""
        ...

    def list(self, prefix: str) -> Listing:
        """Every key starting with `prefix`, sorted by key, and the revision of the read."""
        ...

    def create(self, key: str, value: bytes, *, lease: int = NO_LEASE) -> KeyValue | None:
        """Create the key if it does not exist; None if it does (nothing written)."""
        ...

    def update(
        self, key: str, value: bytes, *, revision: int, lease: int = NO_LEASE
    ) -> KeyValue | None:
        """Replace the value only if the key's mod revision is still `revision`; None if
        the key changed or disappeared meanwhile (nothing written)."""
        ...

    def delete(self, key: str, *, revision: int | None = None) -> bool:
        """Delete the key (only at mod revision `revision` when given); False if nothing
        was deleted."""
        ...

    def grant(self, ttl: int) -> int:
        """A new lease of `ttl` seconds. When it expires, its keys are deleted (and watchers
        see DELETE events)."""
        ...

    def keepalive(self, lease: int) -> int:
        """Renew the lease to its full TTL and return that TTL; LeaseNotFound if it is gone."""
        ...

    def revoke(self, lease: int) -> None:
        """End the lease now, deleting its keys. Revoking a lease that is gone is a no-op."""
        ...

    def watch(self, prefix: str, *, from_revision: int | None = None) -> Watch:
        """Changes under `prefix` from `from_revision` on (inclusive); None means changes
        after now."""
        ...

    def close(self) -> None: ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (etcd's range_end):
    the prefix with its last byte incremented, after dropping trailing 0xff bytes. None when
    no such key exists (empty prefix or all 0xff): the range is open-ended."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
