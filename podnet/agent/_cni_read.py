"""Reading requests off the agent's CNI socket, each within a deadline.

A worker that accepted a connection reads the request itself for a short while (the
executables send the whole request right after connect, so it is there at once). A
client still sending after that is handed to the one `SlowReader` thread, which finishes
the read from many such connections at once (epoll), each under the overall request
deadline: a client that sends slowly, or one byte and then nothing, occupies a slot
there instead of a worker, and the pods behind it are not kept waiting.

The slow reader also drains connections whose request was refused (a field over the
limit): their answer is already sent, and reading what the client still sends lets the
client finish writing and read it, instead of failing on a reset connection.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from podnet._wire import RequestParser, WireError
from podnet.cni import log

_CHUNK = 1 << 20
# What a worker asks for at least: the executables send the whole request in one
# sendmsg, so one recv reads it (one per field took ~15 system calls more per pod); below
# malloc's mmap threshold, so the buffer costs no mmap/munmap.
_READ_AHEAD = 1 << 16


class ReadTimeout(WireError):
    """The client did not send its whole request within the deadline."""


def read_for(conn: socket.socket, parser: RequestParser, deadline: float) -> bool:
    """Read into `parser` until the request is whole (True) or `deadline` (monotonic)
    passes (False); raises WireError when the client closes early or breaks protocol
    (bytes sent after its request included)."""
    while parser.needed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        conn.settimeout(remaining)
        try:
            chunk = conn.recv(min(max(parser.needed, _READ_AHEAD), _CHUNK))
        except TimeoutError:
            return False
        if not chunk:
            raise _closed_early(parser)
        parser.feed(chunk)
    return True


def _closed_early(parser: RequestParser) -> WireError:
    if parser.started:
        return WireError("the client closed the connection in the middle of its request")
    return WireError("the client closed the connection without sending a request")


@dataclass
class _Pending:
    conn: socket.socket
    parser: RequestParser | None  # None: drain until EOF, then close
    deadline: float


class SlowReader:
    """One thread finishing reads (and drains) for up to `capacity` connections at once.

    `on_request(conn, parser)` gets a connection whose request is whole;
    `on_failure(conn, parser, error)` one that failed or ran out of time (a ReadTimeout);
    both own the connection from then on. Connections beyond capacity are refused by
    `adopt`/`drain` returning False: the caller closes them."""

    def __init__(
        self,
        *,
        on_request: Callable[[socket.socket, RequestParser], None],
        on_failure: Callable[[socket.socket, RequestParser, WireError], None],
        capacity: int,
    ) -> None:
        self._on_request = on_request
        self._on_failure = on_failure
        self._capacity = capacity
        self._lock = threading.Lock()
        self._incoming: list[_Pending] = []
        self._held = 0  # connections adopted and not yet handed back or closed
        self._stopped = False
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread = threading.Thread(target=self._loop, name="cni-slow-reader", daemon=True)

    @property
    def held(self) -> int:
        with self._lock:
            return self._held

    def start(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        if self._wake_r is None or self._wake_w is None:
            return  # never started
        self._wake()
        self._thread.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()

    def adopt(self, conn: socket.socket, parser: RequestParser, deadline: float) -> bool:
        """Finish reading `parser`'s request from `conn` by `deadline` (monotonic)."""
        return self._add(_Pending(conn, parser, deadline))

    def drain(self, conn: socket.socket, deadline: float) -> bool:
        """Read and discard what `conn` still sends until EOF or `deadline`, then close."""
        return self._add(_Pending(conn, None, deadline))

    def _add(self, pending: _Pending) -> bool:
        with self._lock:
            if self._stopped or self._held >= self._capacity:
                return False
            self._held += 1
            self._incoming.append(pending)
        self._wake()
        return True

    def _wake(self) -> None:
        assert self._wake_w is not None
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake, or stopping

    def _loop(self) -> None:
        assert self._wake_r is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ, None)
            try:
                self._run(selector)
            finally:
                for key in list(selector.get_map().values()):
                    if key.data is not None:
                        self._release(key.data.conn)
                with self._lock:  # handed over after the last pass: close them too
                    left, self._incoming = self._incoming, []
                for pending in left:
                    self._release(pending.conn)

    def _run(self, selector: selectors.BaseSelector) -> None:
        watched: dict[int, _Pending] = {}
        while True:
            with self._lock:
                if self._stopped:
                    return
                incoming, self._incoming = self._incoming, []
            for pending in incoming:
                try:
                    pending.conn.setblocking(False)
                    selector.register(pending.conn, selectors.EVENT_READ, pending)
                except (OSError, ValueError):  # closed meanwhile
                    self._release(pending.conn)
                    continue
                watched[pending.conn.fileno()] = pending
            now = time.monotonic()
            timeout = min((p.deadline for p in watched.values()), default=now + 60) - now
            for key, _ in selector.select(max(timeout, 0)):
                if key.data is None:
                    _empty(key.fileobj)
                    continue
                self._read(selector, watched, key.data)
            now = time.monotonic()
            for pending in [p for p in watched.values() if p.deadline <= now]:
                self._finish(selector, watched, pending)
                if pending.parser is None:
                    self._release(pending.conn)
                else:
                    self._fail(pending, ReadTimeout("the request did not arrive in time"))

    def _read(
        self, selector: selectors.BaseSelector, watched: dict[int, _Pending], pending: _Pending
    ) -> None:
        parser = pending.parser
        want = _CHUNK if parser is None else min(parser.needed, _CHUNK)
        try:
            chunk = pending.conn.recv(want)
            if parser is not None:
                if not chunk:
                    raise _closed_early(parser)
                parser.feed(chunk)
        except BlockingIOError:
            return
        except (OSError, WireError) as exc:
            self._finish(selector, watched, pending)
            if parser is None or isinstance(exc, OSError):
                self._release(pending.conn)
            else:
                self._fail(pending, exc)
            return
        if parser is None:
            if not chunk:  # the client finished sending: it has its answer
                self._finish(selector, watched, pending)
                self._release(pending.conn)
        elif not parser.needed:
            self._finish(selector, watched, pending)
            self._hand_back(pending.conn)
            try:
                self._on_request(pending.conn, parser)
            except Exception as exc:  # one connection's trouble must not end this thread
                log(f"agent: failed to hand over a CNI request: {exc!r}")
                pending.conn.close()

    def _fail(self, pending: _Pending, error: WireError) -> None:
        assert pending.parser is not None
        self._hand_back(pending.conn)
        try:
            self._on_failure(pending.conn, pending.parser, error)
        except Exception as exc:  # one connection's trouble must not end this thread
            log(f"agent: failed to refuse a CNI connection: {exc!r}")
            pending.conn.close()

    @staticmethod
    def _finish(
        selector: selectors.BaseSelector, watched: dict[int, _Pending], pending: _Pending
    ) -> None:
        selector.unregister(pending.conn)
        del watched[pending.conn.fileno()]
        pending.conn.setblocking(True)

    def _hand_back(self, conn: socket.socket) -> None:
        with self._lock:
            self._held -= 1

    def _release(self, conn: socket.socket) -> None:
        conn.close()
        self._hand_back(conn)


def _empty(sock: object) -> None:
    assert isinstance(sock, socket.socket)
    try:
        while sock.recv(4096):
            pass
    except BlockingIOError:
        pass
