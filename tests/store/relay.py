"""Loopback TCP helpers for the etcd client's connection tests: a relay in front of a
server whose open connections can be made silent (a half-open connection, a hung
member), and a listener that records what arrives and answers nothing (a proxy that
must not be used)."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from types import TracebackType
from typing import Self


class SilenceableRelay:
    """Forwards every connection to 127.0.0.1:`target_port`; `silence()` stops moving
    bytes on the connections open now (both sides stay open, as with a peer that vanished
    without a FIN), `cut()` closes them; new connections are forwarded normally."""

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket, threading.Event]] = []
        self._cut = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self._target, timeout=2)
            silent = threading.Event()
            with self._lock:
                self.connections += 1
                self._pairs.append((client, upstream, silent))
            threading.Thread(
                target=self._pipe, args=(client, upstream, silent), daemon=True
            ).start()

    def _pipe(
        self, client: socket.socket, upstream: socket.socket, silent: threading.Event
    ) -> None:
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopped.is_set() and not silent.is_set():
                for key, _ in selector.select(0.1):
                    if silent.is_set():
                        break
                    source = key.fileobj
                    assert isinstance(source, socket.socket)
                    try:
                        data = source.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self._close(client, upstream)
                        return
                    peers[source].setblocking(True)
                    peers[source].sendall(data)
                    peers[source].setblocking(False)
        # Silenced: hold both sockets open, moving nothing, until cut or stopped.
        while not self._stopped.wait(0.05) and not self._cut.is_set():
            pass
        self._close(client, upstream)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for sock in socks:
            sock.close()

    def silence(self) -> None:
        with self._lock:
            for _, _, silent in self._pairs:
                silent.set()

    def cut(self) -> None:
        """Close the connections open now (new ones are still forwarded)."""
        self.silence()
        self._cut.set()
        time.sleep(0.2)  # every pipe has seen it and closed its sockets
        self._cut.clear()

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RecordingListener:
    """Accepts connections on loopback, keeps the first bytes of each, then closes it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.received: list[bytes] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="recorder", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.received.append(conn.recv(4096))
                except OSError:
                    self.received.append(b"")

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        self._thread.join(2)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
