"""The agent's CNI socket: thin executables hand their requests here and the warm agent
runs the plugin chain in-process (see podnet._thin for the other end).

A fixed set of worker threads each wait in accept() on the socket and serve a connection
from start to end: read the request, run it, answer. No thread is started per request
and no request changes hands: a pod's ADD crosses no thread boundary in the agent, so it
never waits for a second thread to be scheduled and take the GIL. Each worker also keeps
its own warm netlink handle for the node (podnet.netlink.own_rtnl).

A request that raises is answered with its CNI error by `dispatch`. One that runs past
the timeout is answered "try again later" (code 11) by the watchdog; its worker finishes
on its own (a thread cannot be killed) and then retires, and a fresh worker has already
taken its place, so the agent keeps serving at full strength. Every request passes the
agent's `Gate` shared, so its garbage collector can run alone (see podnet.agent._gc).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable

from podnet._wire import WireError, read_request, write_response
from podnet.agent._gate import Gate
from podnet.cni import (
    CNIError,
    Plugin,
    TryAgainLater,
    collect_after_answer,
    dispatch,
    log,
    run_after_answer,
)
from podnet.plugins import PLUGIN_MODULES, load_plugin

DEFAULT_SOCKET = "/run/podnet/cni.sock"
_READ_TIMEOUT = 10.0


class _Reply:
    """The one answer a connection gets: from its worker, or from the watchdog when the
    worker is late, whichever comes first."""

    def __init__(self, conn: socket.socket, plugin_type: str, what: str) -> None:
        self.conn = conn
        self.plugin_type = plugin_type
        self.what = what
        self.overdue = False  # the watchdog answered; the worker retires when done
        self._lock = threading.Lock()
        self._sent = False

    def send(self, code: int, out: bytes, *, overdue: bool = False) -> bool:
        """Answer, unless the connection was answered already (then False)."""
        with self._lock:
            if self._sent:
                return False
            self._sent = True
            self.overdue = overdue
        try:
            write_response(self.conn, code, out)
        except OSError as exc:
            log(f"agent: could not answer {self.what}: {exc}")
        finally:
            self.conn.close()
        return True


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
            self._on_overdue(reply)


class CNIServer:
    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        *,
        resolve: Callable[[str], Plugin] = load_plugin,
        request_timeout: float = 60.0,
        workers: int = 16,
        gate: Gate | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.gate = gate if gate is not None else Gate()
        self._resolve = resolve
        self._timeout = request_timeout
        self._workers = workers
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        self._watchdog = _Watchdog(self._overdue)
        self._count_lock = threading.Lock()
        self.served = 0

    def warm(self) -> None:
        """Import every plugin now, not on the first pod. Then move everything imported
        out of the garbage collector's sight (gc.freeze): its full collections would
        otherwise walk those objects again and again, stalling the pods in flight."""
        for plugin_type in PLUGIN_MODULES:
            self._resolve(plugin_type)
        gc.collect()
        gc.freeze()

    def start(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path) or ".", mode=0o755, exist_ok=True)
        try:
            os.unlink(self.socket_path)  # a socket left by a previous agent
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        listener.listen(128)
        self._listener = listener
        self._watchdog.start()
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
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._watchdog.stop()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def _add_worker(self) -> None:
        thread = threading.Thread(target=self._work, name="cni-worker", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        assert self._listener is not None
        try:
            while not self._closing.is_set():
                try:
                    conn, _ = self._listener.accept()
                except OSError:
                    return  # the listener was closed: the agent is stopping
                reply = self._serve(conn)
                if reply is not None and reply.overdue:
                    return  # a fresh worker took this one's place when it ran late
        finally:
            self._threads.remove(threading.current_thread())

    def _serve(self, conn: socket.socket) -> _Reply | None:
        try:
            conn.settimeout(_READ_TIMEOUT)
            plugin_type, environ, stdin = read_request(conn)
            conn.settimeout(None)
        except (OSError, WireError) as exc:
            log(f"agent: dropped a CNI connection: {exc}")
            conn.close()
            return None
        what = f"{plugin_type} {environ.get('CNI_COMMAND')} {environ.get('CNI_CONTAINERID', '')}"
        reply = _Reply(conn, plugin_type, what)
        self._watchdog.watch(reply, time.monotonic() + self._timeout)
        with collect_after_answer() as later:
            try:
                code, out = self._run(plugin_type, environ, stdin)
            except BaseException as exc:  # dispatch never raises; this is the last guard
                log(f"agent: {what} failed: {exc!r}")
                code, out = _error(CNIError(f"the agent failed: {type(exc).__name__}"))
        if reply.send(code, out):
            with self._count_lock:
                self.served += 1
        else:
            log(f"agent: {what} finished after its {self._timeout:g}s timeout; answer dropped")
        # What the plugin left for after the answer (a veth to destroy): off the pod's path.
        run_after_answer(later)
        return reply

    def _run(self, plugin_type: str, environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
        try:
            plugin = self._resolve(plugin_type)
        except KeyError:
            return _error(CNIError(f"the agent has no plugin of type {plugin_type!r}"))
        with self.gate.shared():
            return dispatch(plugin, environ, stdin)

    def _overdue(self, reply: _Reply) -> None:
        error = TryAgainLater(
            f"{reply.plugin_type} did not finish within {self._timeout:g}s in the agent"
        )
        if not reply.send(*_error(error), overdue=True):
            return  # answered in the meantime
        log(f"agent: {reply.what} still running after {self._timeout:g}s")
        if not self._closing.is_set():
            self._add_worker()


def _error(error: CNIError) -> tuple[int, bytes]:
    return 1, (json.dumps(error.to_json("1.1.0")) + "\n").encode()
