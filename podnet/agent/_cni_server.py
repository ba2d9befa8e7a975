"""The agent's CNI socket: thin executables hand their requests here and the warm agent
runs the plugin chain in-process (see podnet._thin for the other end).

Each request runs on a worker thread; plugins enter pod namespaces only from threads of
their own (podnet.netlink), so no worker ever changes namespace. A request that raises
is answered with its CNI error by `dispatch`; one that runs past the timeout is answered
"try again later" (code 11) while its thread finishes on its own: a thread cannot be
killed, but the agent keeps serving others. Every request passes the agent's `Gate`
shared, so its garbage collector can run alone (see podnet.agent._gc).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import threading
from collections.abc import Callable

from podnet._wire import WireError, read_request, write_response
from podnet.agent._gate import Gate
from podnet.cni import CNIError, Plugin, TryAgainLater, dispatch, log
from podnet.plugins import PLUGIN_MODULES, load_plugin

DEFAULT_SOCKET = "/run/podnet/cni.sock"


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
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="cni")
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._closing = threading.Event()
        self.served = 0

    def warm(self) -> None:
        """Import every plugin (and so pyroute2) now, not on the first pod."""
        for plugin_type in PLUGIN_MODULES:
            self._resolve(plugin_type)

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
        self._acceptor = threading.Thread(target=self._accept_loop, name="cni-accept", daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        self._closing.set()
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=False)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="cni-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(10)
                plugin_type, environ, stdin = read_request(conn)
                conn.settimeout(None)
                code, out = self._run(plugin_type, environ, stdin)
                write_response(conn, code, out)
                self.served += 1
            except (OSError, WireError) as exc:
                log(f"agent: dropped a CNI connection: {exc}")

    def _run(self, plugin_type: str, environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
        try:
            plugin = self._resolve(plugin_type)
        except KeyError:
            return _error(CNIError(f"the agent has no plugin of type {plugin_type!r}"))
        future = self._pool.submit(self._dispatch, plugin, environ, stdin)
        try:
            return future.result(timeout=self._timeout)
        except concurrent.futures.TimeoutError:
            log(
                f"agent: {plugin_type} {environ.get('CNI_COMMAND')} "
                f"{environ.get('CNI_CONTAINERID', '')} still running after {self._timeout:g}s"
            )
            return _error(
                TryAgainLater(
                    f"{plugin_type} did not finish within {self._timeout:g}s in the agent"
                ),
            )

    def _dispatch(self, plugin: Plugin, environ: dict[str, str], stdin: bytes) -> tuple[int, bytes]:
        with self.gate.shared():
            return dispatch(plugin, environ, stdin)


def _error(error: CNIError) -> tuple[int, bytes]:
    return 1, (json.dumps(error.to_json("1.1.0")) + "\n").encode()
