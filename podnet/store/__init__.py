"""Cluster state: one revisioned KV protocol (get, list, create-if-absent, compare-and-swap,
delete, leases, watch) with two backends, sqlite (embedded, one file per machine) and etcd
(v3 through its JSON gateway), chosen by URL with `open_store`."""

from podnet.store._base import KeyValue, Store, Watch, WatchEvent, prefix_end
from podnet.store._errors import (
    AuthFailed,
    Compacted,
    InvalidStoreURL,
    LeaseNotFound,
    StoreCorrupt,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    map_exceptions,
)
from podnet.store._etcd import (
    HTTPX_ERRORS,
    Credentials,
    EtcdStore,
)
from podnet.store._etcd_server import EtcdNotInstalled, LocalEtcd, TLSFiles
from podnet.store._events import WARNING, EventRecorder, list_events
from podnet.store._nodes import Node, NodeChange, Nodes
from podnet.store._objects import AlreadyExists, Conflict, Invalid, NotFound, parse_rfc3339
from podnet.store._sqlite import SQLITE_ERRORS, SqliteStore
from podnet.store._url import DEFAULT_STORE_URL, STORE_ENV, open_store, store_url

__all__ = [
    "WARNING",
    "AlreadyExists",
    "Conflict",
    "EventRecorder",
    "Invalid",
    "Node",
    "NodeChange",
    "Nodes",
    "NotFound",
    "list_events",
    "parse_rfc3339",
    "DEFAULT_STORE_URL",
    "HTTPX_ERRORS",
    "SQLITE_ERRORS",
    "STORE_ENV",
    "AuthFailed",
    "Compacted",
    "Credentials",
    "EtcdNotInstalled",
    "EtcdStore",
    "InvalidStoreURL",
    "KeyValue",
    "LeaseNotFound",
    "LocalEtcd",
    "SqliteStore",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoreTimeout",
    "StoreUnavailable",
    "TLSFiles",
    "Watch",
    "WatchEvent",
    "map_exceptions",
    "open_store",
    "store_url",
    "prefix_end",
]
