"""The health server under clients that do not behave: each connection has an overall
deadline, concurrent connections are capped, and a normal probe is answered afterwards."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from podnet.agent._health import HealthServer

HANDLER_TIMEOUT = 0.5
MAX_CLIENTS = 4
# Far longer than the deadline: a connection still open after this was never cut.
CUT_WITHIN = 10.0


@pytest.fixture
def server() -> Iterator[HealthServer]:
    health = HealthServer(
        "127.0.0.1",
        0,
        ready=lambda: True,
        metrics=lambda: {"up": 1.0},
        handler_timeout=HANDLER_TIMEOUT,
        max_clients=MAX_CLIENTS,
    )
    health.start()
    try:
        yield health
    finally:
        health.stop()


def healthz(port: int) -> int:
    """The status of GET /healthz, retried while the server is still busy closing the
    connections it cut (their slots come back a moment after the client sees EOF)."""
    deadline = time.monotonic() + CUT_WITHIN
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status
        except (ConnectionError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            conn.close()


def trickle_until_cut(sock: socket.socket, stop: threading.Event) -> float | None:
    """Send a request one byte at a time, never finishing it; the time the server cut
    the connection (None if it never did before `stop` or CUT_WITHIN)."""
    start = time.monotonic()
    sock.settimeout(0.05)
    while not stop.is_set() and time.monotonic() - start < CUT_WITHIN:
        try:
            sock.send(b"G")
            if sock.recv(1) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def test_a_trickling_client_is_cut_at_the_deadline(server: HealthServer) -> None:
    base_threads = threading.active_count()
    stop = threading.Event()
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(MAX_CLIENTS)]
    cut: list[float | None] = [None] * len(socks)

    def run(i: int) -> None:
        cut[i] = trickle_until_cut(socks[i], stop)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(socks))]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.1)
        # Every slot is held: one more connection is closed, not queued.
        extra = socket.create_connection(("127.0.0.1", server.port))
        extra.settimeout(CUT_WITHIN)
        try:
            assert extra.recv(1) == b""
        except ConnectionResetError:
            pass
        extra.close()
        for thread in threads:
            thread.join(CUT_WITHIN + 1)
    finally:
        stop.set()
        for sock in socks:
            sock.close()
    assert all(t is not None for t in cut), cut  # all cut although they kept sending
    assert healthz(server.port) == 200
    deadline = time.monotonic() + CUT_WITHIN
    while threading.active_count() > base_threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == base_threads


def test_a_silent_client_does_not_delay_a_probe(server: HealthServer) -> None:
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(MAX_CLIENTS)]
    try:
        # Within the deadline the slots are theirs; after it, probes are served again.
        assert healthz(server.port) == 200
        for sock in silent:
            sock.settimeout(CUT_WITHIN)
            assert sock.recv(1) == b""  # closed by the server, not by us
    finally:
        for sock in silent:
            sock.close()
