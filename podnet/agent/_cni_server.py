"""The agent's CNI socket: thin executables hand their requests here and the warm agent
runs the plugin chain in-process (see podnet._thin for the other end).

A fixed set of worker threads each wait in accept() on the socket and serve a connection
from start to end: read the request, run it, answer. No thread is started per request
and no request changes hands: a pod's ADD crosses no thread boundary in the agent, so it
never waits for a second thread to be scheduled and take the GIL. Each worker runs its
requests with a `Host` of its own (podnet.cni.Host): its warm netlink handle for the node,
and the work its requests leave for after the answer; all of them share the server's one
`HostState` (the masquerade tables declared, the veths being destroyed).

What a bad or slow client can cost is bounded:
- only root and the agent's own user may connect (peer credentials, podnet.agent._cni_socket);
- a worker reads a request for `fast_read` seconds at most; a client still sending then
  moves to the slow reader (podnet.agent._cni_read), which gives it until `read_timeout`
  after its connect, and whose completed requests a few slow-path workers serve;
- a field over the limit, a plugin type that is not UTF-8, a truncated request or one
  that did not arrive in time is answered with a CNI error when the client spoke the
  protocol, and closed otherwise; whatever fails in one connection, the worker lives on;
- the kernel's accept backlog and the slow reader's capacity are fixed.

A request that raises is answered with its CNI error by `dispatch`. One that runs past
`request_timeout` is answered "try again later" (code 11) by the watchdog; its worker
finishes on its own (a thread cannot be killed) and then retires, and a fresh worker
takes its place, up to `max_workers` threads in all, so a run of hung requests cannot
grow the agent without end. Every request passes the agent's `Gate` shared, so its
garbage collector can run alone (see podnet.agent._gc).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable

from podnet._wire import RequestParser, RequestRefused, WireError, write_response
from podnet.agent._cni_read import ReadTimeout, SlowReader, read_for
from podnet.agent._cni_socket import listen, peer_uid, trusted_uids
from podnet.agent._gate import Gate, GateBusy
from podnet.agent._traces import RequestLog
from podnet.cni import (
    CNIError,
    DecodingFailure,
    Host,
    HostState,
    Plugin,
    Trace,
    TryAgainLater,
    dispatch,
    log,
    run_after_answer,
)
from podnet.plugins import PLUGIN_MODULES, load_plugin

DEFAULT_SOCKET = "/run/podnet/cni.sock"
FAST_READ = 0.25  # seconds a worker reads a request before the slow reader takes over
READ_TIMEOUT = 10.0  # seconds from connect to the whole request
_WRITE_TIMEOUT = 5.0
_BACKLOG = 64
_SLOW_CAPACITY = 64
_SLOW_WORKERS = 2


class _AgentBusy(WireError):
    """The slow reader or its queue is full."""


class _Reply:
    """The one answer a connection gets: from its worker, or from the watchdog when the
    worker is late, whichever comes first."""

    def __init__(self, conn: socket.socket, plugin_type: str, what: str, *, main: bool) -> None:
        self.conn = conn
        self.plugin_type = plugin_type
        self.what = what
        self.main = main  # served by a main worker (not a slow-path one)
        self.replaced = False  # a fresh worker took this one's place; it retires when done
        self._lock = threading.Lock()
        self._sent = False

    def claim(self, *, replace: Callable[[_Reply], bool] | None = None) -> bool:
        """Take the right to answer: False when the other side (worker or watchdog)
        took it already. `replace` (the watchdog's) decides, before the worker can see
        its answer was taken, whether a fresh worker replaces this one."""
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            if replace is not None:
                self.replaced = replace(self)
        return True

    def write(self, code: int, out: bytes) -> None:
        """Send the answer (after `claim`) and close the connection."""
        try:
            self.conn.settimeout(_WRITE_TIMEOUT)
            write_response(self.conn, code, out)
        except OSError as exc:
            log(f"agent: could not answer {self.what}: {exc}")
        finally:
            self.conn.close()


class _Watchdog:
    """Answers requests still running at their deadline, from one thread."""

    def __init__(self, on_overdue: Callable[[_Reply], None]) -> None:
        self._on_overdue = on_overdue
        self._heap: list[tuple[float, int, _Reply]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="cni-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    def watch(self, reply: _Reply, deadline: float) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), reply))
            if self._heap[0][2] is reply:
                self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopped:
                    return
                if not self._heap:
                    self._wake.wait()
                    continue
                deadline, _, reply = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
            try:
                self._on_overdue(reply)
            except Exception as exc:  # the watchdog must outlive any one request
                log(f"agent: watchdog failed on {reply.what}: {exc!r}")


class CNIServer:
    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        *,
        resolve: Callable[[str], Plugin] = load_plugin,
        request_timeout: float = 60.0,
        workers: int = 16,
        max_workers: int | None = None,
        gate: Gate | None = None,
        fast_read: float = FAST_READ,
        read_timeout: float = READ_TIMEOUT,
        slow_capacity: int = _SLOW_CAPACITY,
        host_state: HostState | None = None,
        requests: RequestLog | None = None,
    ) -> None:
        self.socket_path = socket_path
        # What the plugins keep across requests: one for every worker (and the agent's GC).
        self.host_state = host_state if host_state is not None else HostState()
        self.requests = requests  # traces and metrics of the requests served; None: none kept
        self.gate = gate if gate is not None else Gate()
        self._resolve = resolve
        self._timeout = request_timeout
        self._workers = workers
        self._max_workers = max_workers if max_workers is not None else 2 * workers
        self._fast_read = fast_read
        self._read_timeout = read_timeout
        self._trusted = trusted_uids()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._threads_lock = threading.Lock()
        self._closing = threading.Event()
        self._watchdog = _Watchdog(self._overdue)
        self._slow = SlowReader(
            on_request=self._slow_request, on_failure=self._refuse, capacity=slow_capacity
        )
        self._slow_queue: queue.Queue[tuple[socket.socket, RequestParser] | None] = queue.Queue(
            maxsize=slow_capacity
        )
        self._slow_threads: list[threading.Thread] = []
        self._count_lock = threading.Lock()
        self.served = 0
        self.refused = 0

    @property
    def worker_count(self) -> int:
        """Main workers alive now (stuck ones included)."""
        with self._threads_lock:
            return len(self._threads)

    def warm(self) -> None:
        """Import every plugin now, not on the first pod. Then move everything imported
        out of the garbage collector's sight (gc.freeze): its full collections would
        otherwise walk those objects again and again, stalling the pods in flight."""
        for plugin_type in PLUGIN_MODULES:
            self._resolve(plugin_type)
        gc.collect()
        gc.freeze()

    def start(self) -> None:
        self._listener = listen(self.socket_path, _BACKLOG)
        self._watchdog.start()
        self._slow.start()
        for _ in range(_SLOW_WORKERS):
            thread = threading.Thread(target=self._work_slow, name="cni-slow-worker", daemon=True)
            self._slow_threads.append(thread)
            thread.start()
        for _ in range(self._workers):
            self._add_worker()

    def stop(self) -> None:
        self._closing.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        with self._threads_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)
        self._slow.stop()
        for _ in self._slow_threads:
            self._slow_queue.put(None)
        for thread in self._slow_threads:
            thread.join(timeout=5)
        self._watchdog.stop()
        self.host_state.close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._work, name="cni-worker", daemon=True)
        with self._threads_lock:
            self._threads.append(thread)
        thread.start()

    def _host(self) -> Host:
        """A worker's host: it defers work until after the answer, and has a helper thread
        for work a verb runs beside its own (bridge's IPAM beside the veth pair)."""
        return Host(self.host_state, defers=True, helper=True)

    def _work(self) -> None:
        assert self._listener is not None
        host = self._host()
        try:
            while not self._closing.is_set():
                try:
                    conn, _ = self._listener.accept()
                except OSError as exc:
                    if self._closing.is_set():
                        return  # the listener was closed: the agent is stopping
                    log(f"agent: accept on the CNI socket failed: {exc}")
                    time.sleep(0.1)  # out of descriptors, say: let connections finish
                    continue
                try:
                    reply = self._accepted(conn, host)
                except Exception as exc:  # whatever one connection did, the worker lives on
                    log(f"agent: a CNI connection failed: {exc!r}")
                    conn.close()
                    continue
                if reply is not None and reply.replaced:
                    return  # a fresh worker took this one's place when it ran late
        finally:
            host.close()
            with self._threads_lock:
                self._threads.remove(threading.current_thread())

    def _work_slow(self) -> None:
        with self._host() as host:
            while True:
                item = self._slow_queue.get()
                if item is None:
                    return
                conn, parser = item
                try:
                    self._serve_parsed(conn, parser, host, main=False)
                except Exception as exc:
                    log(f"agent: a CNI connection failed: {exc!r}")
                    conn.close()

    def _accepted(self, conn: socket.socket, host: Host) -> _Reply | None:
        uid = peer_uid(conn)
        if uid not in self._trusted:
            log(f"agent: refused a CNI connection from uid {uid}")
            self._count_refused()
            conn.close()
            return None
        parser = RequestParser()
        start = time.monotonic()
        try:
            whole = read_for(conn, parser, start + self._fast_read)
        except WireError as exc:
            self._refuse(conn, parser, exc)
            return None
        except OSError as exc:
            log(f"agent: dropped a CNI connection: {exc}")
            conn.close()
            return None
        if not whole:
            if not self._slow.adopt(conn, parser, start + self._read_timeout):
                self._refuse(conn, parser, _AgentBusy("too many slow CNI clients"))
            return None
        return self._serve_parsed(conn, parser, host, main=True)

    def _slow_request(self, conn: socket.socket, parser: RequestParser) -> None:
        try:
            self._slow_queue.put_nowait((conn, parser))
        except queue.Full:
            self._refuse(conn, parser, _AgentBusy("too many slow CNI requests queued"))

    def _refuse(self, conn: socket.socket, parser: RequestParser, error: WireError) -> None:
        """Answer a request that will not run (when the client speaks the protocol), then
        close it, or drain it first when the client may still be sending."""
        log(f"agent: refused a CNI request: {error}")
        self._count_refused()
        if not parser.speaks_protocol:
            conn.close()
            return
        if isinstance(error, RequestRefused):
            refusal = CNIError(str(error), code=error.code)
        elif isinstance(error, (ReadTimeout, _AgentBusy)):
            refusal = TryAgainLater(f"the agent did not get the whole request: {error}")
        else:
            refusal = DecodingFailure(f"the agent could not read the request: {error}")
        try:
            conn.settimeout(_WRITE_TIMEOUT)
            write_response(conn, *_error(refusal))
        except OSError:
            conn.close()
            return
        drain = isinstance(error, RequestRefused) and not parser.complete
        if not (drain and self._slow.drain(conn, time.monotonic() + self._read_timeout)):
            conn.close()

    def _count_refused(self) -> None:
        with self._count_lock:
            self.refused += 1

    def _serve_parsed(
        self, conn: socket.socket, parser: RequestParser, host: Host, *, main: bool
    ) -> _Reply | None:
        try:
            plugin_type, environ, stdin = parser.request()
        except WireError as exc:
            self._refuse(conn, parser, exc)
            return None
        return self._serve(conn, plugin_type, environ, stdin, host, main=main)

    def _serve(
        self,
        conn: socket.socket,
        plugin_type: str,
        environ: dict[str, str],
        stdin: bytes,
        host: Host,
        *,
        main: bool,
    ) -> _Reply:
        what = f"{plugin_type} {environ.get('CNI_COMMAND')} {environ.get('CNI_CONTAINERID', '')}"
        reply = _Reply(conn, plugin_type, what, main=main)
        self._watchdog.watch(reply, time.monotonic() + self._timeout)
        trace = host.trace = Trace(plugin_type, environ) if self.requests is not None else None
        try:
            code, out = self._run(plugin_type, environ, stdin, host)
        except BaseException as exc:  # dispatch never raises; this is the last guard
            log(f"agent: {what} failed: {exc!r}")
            code, out = _error(CNIError(f"the agent failed: {type(exc).__name__}"))
        finally:
            host.trace = None
        if trace is not None:
            trace.finish(code)
        later = host.take_after_answer()
        if reply.claim():
            with self._count_lock:
                self.served += 1  # before the answer: whoever reads it sees the count
            reply.write(code, out)
        else:
            log(f"agent: {what} finished after its {self._timeout:g}s timeout; answer dropped")
        if trace is not None and self.requests is not None:
            trace.error = _message(out) if code else ""
            self.requests.record(trace)
        # What the plugin left for after the answer (a veth to destroy): off the pod's path.
        run_after_answer(later)
        return reply

    def _run(
        self, plugin_type: str, environ: dict[str, str], stdin: bytes, host: Host
    ) -> tuple[int, bytes]:
        try:
            plugin = self._resolve(plugin_type)
        except KeyError:
            return _error(CNIError(f"the agent has no plugin of type {plugin_type!r}"))
        try:
            with self.gate.shared(self._timeout):
                return dispatch(plugin, environ, stdin, host)
        except GateBusy as exc:
            return _error(TryAgainLater(f"the agent's garbage collector is running: {exc}"))

    def _overdue(self, reply: _Reply) -> None:
        error = TryAgainLater(
            f"{reply.plugin_type} did not finish within {self._timeout:g}s in the agent"
        )
        if not reply.claim(replace=self._replace):
            return  # answered in the meantime
        reply.write(*_error(error))
        log(f"agent: {reply.what} still running after {self._timeout:g}s")

    def _replace(self, reply: _Reply) -> bool:
        """Start a fresh worker for `reply`'s late one, within `max_workers`."""
        if not reply.main or self._closing.is_set():
            return False
        if self.worker_count >= self._max_workers:
            log(f"agent: {self._max_workers} CNI workers already; a late one is not replaced")
            return False
        self._add_worker()
        return True


def _message(out: bytes) -> str:
    """The msg of a CNI error answer (only answers with an error are read)."""
    try:
        return str(json.loads(out).get("msg", ""))
    except (ValueError, AttributeError):
        return out[:200].decode(errors="replace")


def _error(error: CNIError) -> tuple[int, bytes]:
    return 1, (json.dumps(error.to_json("1.1.0")) + "\n").encode()
