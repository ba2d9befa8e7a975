"""Choosing a backend by URL.

    sqlite:///var/lib/podnet/cluster.db        an absolute path (three slashes + path)
    sqlite:relative/cluster.db                 a path relative to the working directory
    etcd://127.0.0.1:2379,127.0.0.1:22379      etcd endpoints over plain HTTP
    etcds://host:2379?ca=CA.pem&cert=C.pem&key=K.pem   etcd over TLS

The URL comes from `--store`, else the environment variable PODNET_STORE, else the default.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from podnet.store._base import Store
from podnet.store._errors import InvalidStoreURL
from podnet.store._etcd import EtcdStore, TLSConfig
from podnet.store._sqlite import SqliteStore

STORE_ENV = "PODNET_STORE"
DEFAULT_STORE_URL = "sqlite:///var/lib/podnet/cluster.db"
DEFAULT_ETCD_PORT = 2379


def store_url(explicit: str | None = None) -> str:
    """The store URL to use: `explicit`, else $PODNET_STORE, else the default."""
    return explicit or os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def open_store(url: str) -> Store:
    """Open the store a URL names (see the module docstring)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = parts.netloc + parts.path if parts.netloc else parts.path
        if not path:
            raise InvalidStoreURL(f"store URL {url!r}: no database path")
        return SqliteStore(path)
    if scheme in ("etcd", "etcds"):
        return EtcdStore(
            _etcd_endpoints(url, parts.netloc, tls=scheme == "etcds"),
            tls=_tls_config(url, parts.query) if scheme == "etcds" else None,
        )
    raise InvalidStoreURL(
        f"store URL {url!r}: unknown scheme {parts.scheme!r} (want sqlite, etcd or etcds)"
    )


def _etcd_endpoints(url: str, netloc: str, *, tls: bool) -> list[str]:
    hosts = [host.strip() for host in netloc.split(",") if host.strip()]
    if not hosts:
        raise InvalidStoreURL(f"store URL {url!r}: no etcd endpoints")
    scheme = "https" if tls else "http"
    endpoints = []
    for host in hosts:
        name, sep, port = host.rpartition(":")
        if not sep or name.endswith(":") or (name.startswith("[") != name.endswith("]")):
            name, port = host, str(DEFAULT_ETCD_PORT)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidStoreURL(f"store URL {url!r}: bad port in {host!r}")
        endpoints.append(f"{scheme}://{name}:{port}")
    return endpoints


def _tls_config(url: str, query: str) -> TLSConfig:
    params = parse_qs(query)
    unknown = set(params) - {"ca", "cert", "key"}
    if unknown:
        raise InvalidStoreURL(f"store URL {url!r}: unknown parameter {sorted(unknown)[0]!r}")

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values else None

    config = TLSConfig(ca=one("ca"), cert=one("cert"), key=one("key"))
    if (config.cert is None) != (config.key is None):
        raise InvalidStoreURL(f"store URL {url!r}: cert and key go together")
    return config
