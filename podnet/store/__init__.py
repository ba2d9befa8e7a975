"""Cluster state: one revisioned KV protocol (get, list, create-if-absent, compare-and-swap,
delete, leases, watch) with two backends, sqlite (embedded, one file per machine) and etcd
(v3 through its JSON gateway), chosen by URL with `open_store`."""

from podnet.store._base import (
    NO_LEASE,
    EventType,
    KeyValue,
    Listing,
    Store,
    Watch,
    WatchEvent,
    prefix_end,
)
from podnet.store._errors import (
    Compacted,
    InvalidStoreURL,
    LeaseNotFound,
    StoreCorrupt,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    map_exceptions,
)
from podnet.store._etcd import HTTPX_ERRORS, EtcdError, EtcdStore, TLSConfig
from podnet.store._etcd_server import EtcdNotInstalled, LocalEtcd, TLSFiles
from podnet.store._sqlite import SQLITE_ERRORS, SqliteStore
from podnet.store._url import DEFAULT_STORE_URL, STORE_ENV, open_store, store_url

__all__ = [
    "DEFAULT_STORE_URL",
    "HTTPX_ERRORS",
    "NO_LEASE",
    "SQLITE_ERRORS",
    "STORE_ENV",
    "Compacted",
    "EtcdError",
    "EtcdNotInstalled",
    "EtcdStore",
    "EventType",
    "InvalidStoreURL",
    "KeyValue",
    "LeaseNotFound",
    "Listing",
    "LocalEtcd",
    "SqliteStore",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "TLSConfig",
    "TLSFiles",
    "Watch",
    "WatchEvent",
    "map_exceptions",
    "open_store",
    "prefix_end",
    "store_url",
]
