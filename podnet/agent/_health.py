"""/healthz, /readyz and Prometheus /metrics for the agent (flanneld serves the first two).

A client cannot hold the server: each connection has HANDLER_TIMEOUT in all to send its
request and read the answer (its socket is shut down when that runs out, however slowly
it trickles bytes), and at most MAX_CLIENTS are served at once; one more is closed
without an answer rather than queued behind them. Probes from the kubelet take
milliseconds, so neither bound is ever felt by a well-behaved client.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, generate_latest

HANDLER_TIMEOUT = 5.0
MAX_CLIENTS = 16


class _BoundedServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a cap on concurrent connections and a deadline on each."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, *, timeout: float, cap: int):
        super().__init__(address, handler)
        self.handler_timeout = timeout
        self._slots = threading.BoundedSemaphore(cap)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: close at once, never queue
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # A timer, not only a per-recv timeout: a client sending a byte a second would
        # otherwise reset a per-recv timeout forever.
        deadline = threading.Timer(self.handler_timeout, _shut, args=(request,))
        deadline.daemon = True
        deadline.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            deadline.cancel()
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client cut at its deadline or gone mid-answer: nothing to report


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the handler blocked in recv or send
    except OSError:
        pass  # already closed


class HealthServer:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        ready: Callable[[], bool],
        metrics: Callable[[], dict[str, float]],
        registry: CollectorRegistry | None = None,
        traces: Callable[[str, str], bytes] | None = None,
        handler_timeout: float = HANDLER_TIMEOUT,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            timeout = handler_timeout  # per recv/send, under the server's overall deadline

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path == "/healthz":
                    owner._answer(self, 200, "ok\n")
                elif self.path == "/readyz":
                    is_ready = ready()
                    owner._answer(
                        self, 200 if is_ready else 503, "ok\n" if is_ready else "not ready\n"
                    )
                elif self.path == "/metrics":
                    lines = [f"{name} {value:g}" for name, value in sorted(metrics().items())]
                    text = "\n".join(lines) + "\n"
                    if registry is not None:
                        text += generate_latest(registry).decode()
                    owner._answer(self, 200, text, "text/plain; version=0.0.4")
                elif traces is not None and self.path.split("?")[0] == "/traces":
                    query = parse_qs(urlsplit(self.path).query)
                    pod = query.get("pod", [""])[0]
                    container = query.get("container", [""])[0]
                    owner._answer(self, 200, traces(pod, container).decode(), "application/json")
                else:
                    owner._answer(self, 404, "not found\n")

            def log_message(self, format: str, *args: object) -> None:
                pass  # no per-request noise in the agent's log

        self._server = _BoundedServer(
            (address, port), Handler, timeout=handler_timeout, cap=max_clients
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, code: int, body: str, kind: str = "text/plain"
    ) -> None:
        data = body.encode()
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
