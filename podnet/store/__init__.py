"""Cluster state: one revisioned KV protocol (get, list, create-if-absent, compare-and-swap,
delete, leases, watch) with two backends, sqlite (embedded, one file per machine) and etcd
(v3 through its JSON gateway), chosen by URL with `open_store`."""

from podnet.store._base import NO_LEASE, KeyValue, Listing, Store, Watch, WatchEvent, prefix_end
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
from podnet.store._etcd_server import (
    PROGRESS_NOTIFY_INTERVAL,
    EtcdNotInstalled,
    LocalEtcd,
    TLSFiles,
)
from podnet.store._events import EVENTS_PREFIX, WARNING, EventRecorder, list_events
from podnet.store._nodes import (
    NODES_PREFIX,
    SUBDOMAIN,
    SUBDOMAIN_MESSAGE,
    Node,
    NodeChange,
    Nodes,
    validate_node,
    validate_node_update,
)
from podnet.store._objects import (
    AlreadyExists,
    Conflict,
    Invalid,
    NotFound,
    now_rfc3339,
    parse_rfc3339,
)
from podnet.store._sqlite import SQLITE_ERRORS, SqliteStore
from podnet.store._url import DEFAULT_STORE_URL, STORE_ENV, open_store, store_url

__all__ = [
    "EVENTS_PREFIX",
    "NODES_PREFIX",
    "SUBDOMAIN",
    "SUBDOMAIN_MESSAGE",
    "NO_LEASE",
    "PROGRESS_NOTIFY_INTERVAL",
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
    "now_rfc3339",
    "parse_rfc3339",
    "validate_node",
    "validate_node_update",
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
    "Listing",
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
