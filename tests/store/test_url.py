from __future__ import annotations

from pathlib import Path

import pytest

from podnet.store import (
    DEFAULT_STORE_URL,
    EtcdStore,
    InvalidStoreURL,
    SqliteStore,
    open_store,
    store_url,
)


def test_sqlite_url_with_absolute_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/a/b.db")
    assert isinstance(store, SqliteStore)
    assert store.path == f"{tmp_path}/a/b.db"
    assert (tmp_path / "a" / "b.db").exists()
    store.close()


@pytest.mark.parametrize(
    ("url", "endpoints"),
    [
        ("etcd://127.0.0.1:2379", ["http://127.0.0.1:2379"]),
        ("etcd://a:1,b:2, c:3", ["http://a:1", "http://b:2", "http://c:3"]),
        ("etcd://somehost", ["http://somehost:2379"]),
        ("etcd://[::1]:2379", ["http://[::1]:2379"]),
        ("etcds://h:2379", ["https://h:2379"]),
    ],
)
def test_etcd_urls(url: str, endpoints: list[str]) -> None:
    store = open_store(url)
    assert isinstance(store, EtcdStore)
    assert store.endpoints == endpoints
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://x", "unknown scheme 'redis'"),
        ("sqlite://", "no database path"),
        ("etcd://", "no etcd endpoints"),
        ("etcd://h:notaport", "bad port"),
        ("etcd://h:70000", "bad port"),
        ("etcds://h:1?cert=/c.pem", "cert and key go together"),
        ("etcds://h:1?bogus=1", "unknown parameter 'bogus'"),
        ("/var/lib/x.db", "unknown scheme ''"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidStoreURL, match=message):
        open_store(url)


def test_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PODNET_STORE", raising=False)
    assert store_url(None) == DEFAULT_STORE_URL
    monkeypatch.setenv("PODNET_STORE", "etcd://e:1")
    assert store_url(None) == "etcd://e:1"
    assert store_url("sqlite:///x.db") == "sqlite:///x.db"
