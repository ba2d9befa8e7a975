from __future__ import annotations

from pathlib import Path

import pytest

from podnet.store import (
    DEFAULT_STORE_URL,
    Credentials,
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
        ("etcd://h:1?ca=/ca.pem", "unknown parameter 'ca'"),
        ("etcd://h:1?password-file=/p", "password-file without a user"),
        ("etcd://u@h:1", "user 'u' without a password"),
        ("etcd://:pw@h:1", "empty user name"),
        ("etcd://u:pw@h:1?password-file=/p", "a password and a password-file"),
        ("etcd://u@h:1?password-file=/nonexistent/pw", "password-file: No such file"),
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


def test_etcd_url_credentials_and_proxy(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from file\n")
    store = open_store(f"etcd://me@h:1,k:2?password-file={secret}&proxy=http://p:3128")
    assert isinstance(store, EtcdStore)
    assert store.endpoints == ["http://h:1", "http://k:2"]
    assert store._credentials == Credentials("me", "from file")
    store.close()
    inline = open_store("etcds://a%40b:p%3Aw@h:1")
    assert isinstance(inline, EtcdStore)
    assert inline._credentials == Credentials("a@b", "p:w")
    inline.close()
