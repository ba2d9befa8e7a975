"""Store errors. sqlite3 and httpx exceptions never leave podnet.store: each backend
wraps its library calls in `map_exceptions`, which picks the most specific podnet error
and chains the original (`raise ... from exc`).

    StoreError                   anything the store reports
    ├── InvalidStoreURL          the URL names no backend we have, or is malformed
    ├── StoreUnavailable         cannot reach or open the store now; retry later
    │   └── StoreTimeout         the store did not answer in time (busy, no leader)
    ├── AuthFailed               the store refused our credentials (or wants some)
    ├── LeaseNotFound            the lease expired or was revoked
    ├── Compacted                a watch asked for history the store no longer keeps
    ├── StoreCorrupt             the store answered something we cannot understand
    └── ObjectError              (_objects.py) a request about a Node or Event refused
        ├── AlreadyExists        create of a name that exists
        ├── NotFound             read or update of a name that does not
        ├── Invalid              the object breaks a validation rule
        └── Conflict             the object changed since it was read

A failed compare-and-swap or create-if-absent is not an error: those calls return None.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class StoreError(Exception):
    """Something the store reports; the message names the problem in one line."""


class InvalidStoreURL(StoreError):
    pass


class StoreUnavailable(StoreError):
    pass


class StoreTimeout(StoreUnavailable):
    pass


class AuthFailed(StoreError):
    """Wrong or missing credentials, or a user without permission: retrying cannot help."""


class LeaseNotFound(StoreError):
    pass


class Compacted(StoreError):
    """The revision a watch wanted to start from was compacted away; relist and rewatch."""

    def __init__(self, msg: str, *, compact_revision: int) -> None:
        super().__init__(msg)
        self.compact_revision = compact_revision


class StoreCorrupt(StoreError):
    pass


ExceptionMap = Mapping[type[BaseException], type[StoreError]]


@contextmanager
def map_exceptions(mapping: ExceptionMap, context: str = "") -> Iterator[None]:
    """Translate library exceptions raised inside the block into podnet store errors.

    The most specific entry wins: for an exception that is an instance of several keys,
    the key that comes latest in the exception's MRO order (i.e. the closest class) is used.
    Exceptions not in the mapping (and StoreErrors) pass through untouched.
    """
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        target = _most_specific(mapping, exc)
        if target is None:
            raise
        message = f"{context}: {exc}" if context else str(exc)
        raise target(message) from exc


def _most_specific(mapping: ExceptionMap, exc: BaseException) -> type[StoreError] | None:
    for klass in type(exc).__mro__:
        if klass in mapping:
            return mapping[klass]
    return None
