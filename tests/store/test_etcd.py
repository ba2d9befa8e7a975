"""etcd-only behaviour: a 3-member cluster losing its leader, endpoint failover, compaction,
TLS. Each test starts its own etcd on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from podnet.store import (
    Compacted,
    EtcdStore,
    LocalEtcd,
    StoreError,
    StoreUnavailable,
    TLSFiles,
    Watch,
    WatchEvent,
    open_store,
)
from tests.backends import start_etcd
from tests.store.relay import RecordingListener, SilenceableRelay


def write_with_retries(store: EtcdStore, key: str, value: bytes) -> None:
    """create-if-absent that survives an election: a write whose answer was lost is
    checked by reading the key back (values are unique per key)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            store.create(key, value)
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
            try:
                kv = store.get(key)
            except StoreUnavailable:
                continue
            if kv is not None and kv.value == value:
                return


def test_watch_resumes_after_the_leader_is_killed(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path, members=3)
    try:
        leader = etcd.leader()
        # The watch and the writes go to the leader first, so killing it breaks both.
        order = [leader] + [i for i in range(3) if i != leader]
        endpoints = [etcd.endpoints[i] for i in order]
        # A write forwarded to the dead leader hangs until the request timeout: keep it short.
        writer = EtcdStore(endpoints, timeout=1.0)
        watcher = EtcdStore(endpoints, timeout=1.0)
        start = writer.list("/kill/").revision + 1
        watch = watcher.watch("/kill/", from_revision=start)
        keys = [f"/kill/{i:03d}" for i in range(60)]
        for key in keys[:30]:
            write_with_retries(writer, key, key.encode())
        etcd.kill(leader)
        for key in keys[30:]:
            write_with_retries(writer, key, key.encode())

        seen: list[WatchEvent] = []
        deadline = time.monotonic() + 20
        while len(seen) < len(keys) and time.monotonic() < deadline:
            seen += watch.get(0.1)
        watch.close()
        assert [e.key for e in seen] == keys  # in order, none missed, none twice
        revisions = [e.revision for e in seen]
        assert revisions == sorted(set(revisions))
        assert etcd.leader() != leader
        writer.close()
        watcher.close()
    finally:
        etcd.stop()


def test_requests_fail_over_to_a_live_endpoint(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path, members=3)
    try:
        follower = (etcd.leader() + 1) % 3
        etcd.kill(follower)
        # The dead member is listed first: every call must still succeed.
        others = [ep for i, ep in enumerate(etcd.endpoints) if i != follower]
        store = EtcdStore([etcd.endpoints[follower], *others])
        assert store.create("/f/k", b"v") is not None
        assert store.get("/f/k") is not None
        with store.watch("/f/", from_revision=1) as watch:
            events: list[WatchEvent] = []
            deadline = time.monotonic() + 5
            while not events and time.monotonic() < deadline:
                events = watch.get(0.1)
        assert [e.key for e in events] == ["/f/k"]
        store.close()
    finally:
        etcd.stop()


def test_no_endpoint_reachable_is_store_unavailable(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    url = etcd.url
    etcd.stop()
    store = open_store(url)
    with pytest.raises(StoreUnavailable, match="no endpoint answered"):
        store.create("/k", b"v")
    store.close()


def test_watch_from_a_compacted_revision_raises_compacted(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    try:
        store = open_store(etcd.url)
        for i in range(5):
            store.create(f"/c/{i}", b"x")
        head = store.list("/c/").revision
        httpx.post(etcd.endpoints[0] + "/v3/kv/compaction", json={"revision": str(head)})
        watch = store.watch("/c/", from_revision=2)
        with pytest.raises(Compacted) as caught:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                watch.get(0.1)
        assert caught.value.compact_revision == head - 1
        store.close()
    finally:
        etcd.stop()


def make_tls_files(directory: Path) -> TLSFiles:
    """A CA, and one certificate for 127.0.0.1 used by the server and the client."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=pn-test-ca", "-days", "1",
        "-out", "ca.pem")  # fmt: skip
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "node.key")
    run("req", "-new", "-key", "node.key", "-subj", "/CN=127.0.0.1", "-out", "node.csr")
    (directory / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    run("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-out", "node.pem")  # fmt: skip
    return TLSFiles(
        ca=str(directory / "ca.pem"),
        cert=str(directory / "node.pem"),
        key=str(directory / "node.key"),
    )


def test_tls_with_client_certificates(tmp_path: Path) -> None:
    try:
        LocalEtcd.binary()
    except StoreError as exc:
        pytest.skip(str(exc))
    tls = make_tls_files(tmp_path)
    etcd = LocalEtcd(1, tls=tls, base_dir=tmp_path / "etcd").start()
    try:
        assert etcd.url.startswith("etcds://")
        store = open_store(etcd.url)
        assert store.create("/tls/k", b"v") is not None
        with store.watch("/tls/", from_revision=1) as watch:
            deadline = time.monotonic() + 5
            events: list[WatchEvent] = []
            while not events and time.monotonic() < deadline:
                events = watch.get(0.1)
        assert [e.key for e in events] == ["/tls/k"]
        store.close()

        # Without a client certificate the server refuses us.
        host = etcd.url.split("//")[1].split("?")[0]
        anonymous = open_store(f"etcds://{host}?ca={tls.ca}")
        with pytest.raises(StoreError, match="TLS"):
            anonymous.get("/tls/k")
        anonymous.close()
    finally:
        etcd.stop()


def test_close_stops_watch_threads(tmp_path: Path) -> None:
    etcd = start_etcd(tmp_path)
    try:
        store = open_store(etcd.url)
        watches = [store.watch(f"/t{i}/") for i in range(5)]
        time.sleep(0.2)
        threads = [w._thread for w in watches]  # type: ignore[attr-defined]
        assert all(t.is_alive() for t in threads)
        store.close()  # closes its watches, breaking their blocking reads
        assert all(w.get(0.01) == [] for w in watches)
        assert not any(t.is_alive() for t in threads)
    finally:
        etcd.stop()


def test_proxies_from_the_environment_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etcd = start_etcd(tmp_path)
    try:
        with RecordingListener() as proxy:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
                monkeypatch.setenv(name, proxy.url)
            monkeypatch.delenv("NO_PROXY", raising=False)
            monkeypatch.delenv("no_proxy", raising=False)
            store = open_store(etcd.url)
            assert store.create("/p/k", b"v") is not None
            with store.watch("/p/", from_revision=1) as watch:
                assert [e.key for e in wait_for_events(watch, 1)] == ["/p/k"]
            store.close()
            assert proxy.received == []

            # A proxy named in the URL is used (this one answers nothing: unavailable).
            configured = open_store(f"{etcd.url}?proxy={proxy.url}")
            with pytest.raises(StoreUnavailable):
                configured.get("/p/k")
            configured.close()
            assert proxy.received
            assert proxy.received[0].startswith(f"POST {etcd.endpoints[0]}/v3/kv/range".encode())
    finally:
        etcd.stop()


def wait_for_events(watch: Watch, count: int, timeout: float = 10) -> list[WatchEvent]:
    seen: list[WatchEvent] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen += watch.get(0.1)
    return seen


def test_a_silent_watch_connection_is_dropped_and_resumed(tmp_path: Path) -> None:
    """A half-open connection (no FIN, no bytes) is noticed by the read deadline and the
    watch resumes from its revision on a new connection: nothing missed, nothing twice."""
    etcd = start_etcd(tmp_path)
    writer = open_store(etcd.url)
    try:
        with ExitStack() as stack:
            relay = stack.enter_context(SilenceableRelay(int(etcd.endpoints[0].rsplit(":", 1)[1])))
            watcher = stack.enter_context(EtcdStore([relay.endpoint], watch_read_deadline=1.0))
            watch = watcher.watch("/s/")
            writer.create("/s/before", b"1")
            assert [e.key for e in wait_for_events(watch, 1)] == ["/s/before"]
            connections = relay.connections
            relay.silence()
            writer.create("/s/after", b"2")
            writer.create("/s/later", b"3")
            assert [e.key for e in wait_for_events(watch, 2)] == ["/s/after", "/s/later"]
            assert relay.connections > connections
            assert watch.get(0.5) == []  # nothing delivered twice
    finally:
        writer.close()
        etcd.stop()


def test_progress_notifications_move_a_quiet_watch_past_compaction(tmp_path: Path) -> None:
    """While its own keys are quiet, a watch's resume point follows the cluster's revision
    (etcd's progress notifications), so a reconnect after a compaction does not fail."""
    try:
        LocalEtcd.binary()
    except StoreError as exc:
        pytest.skip(str(exc))
    fast_progress = ("--experimental-watch-progress-notify-interval=200ms",)
    etcd = LocalEtcd(1, base_dir=tmp_path / "etcd", extra_args=fast_progress).start()
    writer = open_store(etcd.url)
    try:
        with ExitStack() as stack:
            relay = stack.enter_context(SilenceableRelay(int(etcd.endpoints[0].rsplit(":", 1)[1])))
            watcher = stack.enter_context(EtcdStore([relay.endpoint], watch_read_deadline=1.0))
            watch = watcher.watch("/quiet/")
            for i in range(5):
                writer.create(f"/busy/{i}", b"x")
            head = writer.list("/busy/").revision
            time.sleep(1.0)  # a few progress notifications arrive
            httpx.post(etcd.endpoints[0] + "/v3/kv/compaction", json={"revision": str(head)})
            relay.silence()  # the watch must reconnect, from after the compacted history
            writer.create("/quiet/k", b"v")
            assert [e.key for e in wait_for_events(watch, 1)] == ["/quiet/k"]
    finally:
        writer.close()
        etcd.stop()
