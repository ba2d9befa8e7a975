"""etcd with auth enabled (users, roles, tokens), against a real etcd: the store logs in
with a user name and password, renews an expired token, and refuses clearly."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from podnet.store import (
    AuthFailed,
    Credentials,
    EtcdStore,
    LocalEtcd,
    StoreError,
    open_store,
    prefix_end,
)
from tests.store.relay import SilenceableRelay
from tests.store.test_etcd import wait_for_events

TOKEN_TTL = 1  # seconds: etcd's --auth-token-ttl, short so the tests see tokens expire


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def enable_auth(endpoint: str) -> None:
    """root (all keys) and alice (read-write on /a/ only), then auth on."""
    end = prefix_end(b"/a/")
    assert end is not None
    steps: list[tuple[str, dict[str, object]]] = [
        ("/v3/auth/user/add", {"name": "root", "password": "root-pw"}),
        ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
        ("/v3/auth/role/add", {"name": "podnet"}),
        (
            "/v3/auth/role/grant",
            {
                "name": "podnet",
                "perm": {
                    "permType": "READWRITE",
                    "key": b64("/a/"),
                    "range_end": base64.b64encode(end).decode(),
                },
            },
        ),
        ("/v3/auth/user/add", {"name": "alice", "password": "p@ss:w/rd"}),
        ("/v3/auth/user/grant", {"user": "alice", "role": "podnet"}),
        ("/v3/auth/enable", {}),
    ]
    for path, body in steps:
        response = httpx.post(endpoint + path, json=body, timeout=5)
        assert response.status_code == 200, response.text


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[LocalEtcd]:
    try:
        LocalEtcd.binary()
    except StoreError as exc:
        pytest.skip(str(exc))
    server = LocalEtcd(
        1,
        base_dir=tmp_path / "etcd",
        extra_args=(f"--auth-token-ttl={TOKEN_TTL}", "--bcrypt-cost=4"),
    ).start()
    try:
        enable_auth(server.endpoints[0])
        yield server
    finally:
        server.stop()


def host(etcd: LocalEtcd) -> str:
    return etcd.endpoints[0].removeprefix("http://")


def test_a_user_with_a_password_file_reads_writes_and_watches(
    etcd: LocalEtcd, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("p@ss:w/rd\n")
    store = open_store(f"etcd://alice@{host(etcd)}?password-file={secret}")
    try:
        assert store.create("/a/k", b"v") is not None
        kv = store.get("/a/k")
        assert kv is not None and kv.value == b"v"
        with store.watch("/a/", from_revision=1) as watch:
            assert [e.key for e in wait_for_events(watch, 1)] == ["/a/k"]
    finally:
        store.close()


def test_an_inline_password_is_percent_decoded(etcd: LocalEtcd) -> None:
    store = open_store(f"etcd://alice:p%40ss%3Aw%2Frd@{host(etcd)}")
    try:
        assert store.create("/a/inline", b"v") is not None
    finally:
        store.close()


def test_refusals_are_auth_failed_with_the_reason(etcd: LocalEtcd) -> None:
    anonymous = open_store(etcd.url)
    with pytest.raises(AuthFailed, match="auth enabled: give a user"):
        anonymous.get("/a/k")
    with pytest.raises(AuthFailed, match="user name is empty"):
        watch = anonymous.watch("/a/", from_revision=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            watch.get(0.1)
    anonymous.close()

    wrong = open_store(f"etcd://alice:nope@{host(etcd)}")
    with pytest.raises(AuthFailed, match="authentication failed"):
        wrong.get("/a/k")
    wrong.close()

    alice = EtcdStore(etcd.endpoints, credentials=Credentials("alice", "p@ss:w/rd"))
    with pytest.raises(AuthFailed, match="permission denied"):
        alice.create("/b/k", b"v")  # outside her role's keys
    alice.close()


def test_an_expired_token_is_renewed_for_requests_and_watches(etcd: LocalEtcd) -> None:
    writer = EtcdStore(etcd.endpoints, credentials=Credentials("root", "root-pw"))
    port = int(etcd.endpoints[0].rsplit(":", 1)[1])
    try:
        with ExitStack() as stack:
            relay = stack.enter_context(SilenceableRelay(port))
            alice = stack.enter_context(
                EtcdStore([relay.endpoint], credentials=Credentials("alice", "p@ss:w/rd"))
            )
            assert alice.create("/a/1", b"1") is not None
            first_token = alice._token
            watch = alice.watch("/a/")
            time.sleep(TOKEN_TTL + 1.5)  # the token expires (a watch does not renew it)
            assert alice.create("/a/2", b"2") is not None  # renewed, the request repeated
            assert alice._token not in (None, first_token)
            time.sleep(TOKEN_TTL + 1.5)
            relay.cut()  # the watch reconnects with an expired token, and renews it
            writer.create("/a/3", b"3")
            assert [e.key for e in wait_for_events(watch, 2)] == ["/a/2", "/a/3"]
    finally:
        writer.close()


def test_credentials_for_a_cluster_without_auth_are_not_needed(tmp_path: Path) -> None:
    try:
        LocalEtcd.binary()
    except StoreError as exc:
        pytest.skip(str(exc))
    with LocalEtcd(1, base_dir=tmp_path / "etcd") as server:
        store = EtcdStore(server.endpoints, credentials=Credentials("anyone", "x"))
        assert store.create("/k", b"v") is not None
        store.close()


def test_the_password_is_not_in_repr_or_errors() -> None:
    assert "secret" not in repr(Credentials("u", "secret"))
    with pytest.raises(StoreError) as caught:
        open_store("etcd://u:secret@h:1?bogus=1")
    assert "secret" not in str(caught.value)
    assert "u:***@h:1" in str(caught.value)
