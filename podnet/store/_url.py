"""Choosing a backend by URL.

    sqlite:///var/lib/podnet/cluster.db        an absolute path (three slashes + path)
    sqlite:relative/cluster.db                 a path relative to the working directory
    etcd://127.0.0.1:2379,127.0.0.1:22379      etcd endpoints over plain HTTP
    etcds://host:2379?ca=CA.pem&cert=C.pem&key=K.pem   etcd over TLS
    etcd://USER@host:2379?password-file=/etc/podnet/etcd-password   an etcd user
    etcd://USER:PASSWORD@host:2379              the same, the password inline (visible in ps)
    etcd://host:2379?proxy=http://proxy:3128    through a proxy (never one from the environment)

The URL comes from `--store`, else the environment variable PODNET_STORE, else the default.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from podnet.store._base import Store
from podnet.store._errors import InvalidStoreURL
from podnet.store._etcd import Credentials, EtcdStore, TLSConfig
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
        tls = scheme == "etcds"
        userinfo, _, hosts = parts.netloc.rpartition("@")
        url = _without_password(url, userinfo)  # error messages name the URL
        params = _etcd_params(url, parts.query, tls=tls)
        return EtcdStore(
            _etcd_endpoints(url, hosts, tls=tls),
            tls=_tls_config(url, params) if tls else None,
            credentials=_credentials(url, userinfo, params),
            proxy=_one(params, "proxy"),
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


def _without_password(url: str, userinfo: str) -> str:
    name, has_password, _ = userinfo.partition(":")
    return url.replace(f"{userinfo}@", f"{name}:***@", 1) if has_password else url


def _etcd_params(url: str, query: str, *, tls: bool) -> dict[str, list[str]]:
    params = parse_qs(query)
    known = {"password-file", "proxy"} | ({"ca", "cert", "key"} if tls else set())
    unknown = set(params) - known
    if unknown:
        raise InvalidStoreURL(f"store URL {url!r}: unknown parameter {sorted(unknown)[0]!r}")
    return params


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _credentials(url: str, userinfo: str, params: dict[str, list[str]]) -> Credentials | None:
    password_file = _one(params, "password-file")
    if not userinfo:
        if password_file is not None:
            raise InvalidStoreURL(f"store URL {url!r}: password-file without a user")
        return None
    name, has_password, password = userinfo.partition(":")
    if not name:
        raise InvalidStoreURL(f"store URL {url!r}: empty user name")
    if has_password and password_file is not None:
        raise InvalidStoreURL(f"store URL {url!r}: a password and a password-file")
    if password_file is not None:
        try:
            with open(password_file, encoding="utf-8") as file:
                password = file.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
            raise InvalidStoreURL(f"store URL {url!r}: password-file: {reason}") from exc
    elif not has_password:
        raise InvalidStoreURL(f"store URL {url!r}: user {name!r} without a password")
    return Credentials(unquote(name), unquote(password) if has_password else password)


def _tls_config(url: str, params: dict[str, list[str]]) -> TLSConfig:
    config = TLSConfig(ca=_one(params, "ca"), cert=_one(params, "cert"), key=_one(params, "key"))
    if (config.cert is None) != (config.key is None):
        raise InvalidStoreURL(f"store URL {url!r}: cert and key go together")
    return config
