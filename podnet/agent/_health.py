"""/healthz, /readyz and Prometheus /metrics for the agent (flanneld serves the first two)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HealthServer:
    def __init__(
        self,
        address: str,
        port: int,
        *,
        ready: Callable[[], bool],
        metrics: Callable[[], dict[str, float]],
    ) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
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
                    owner._answer(self, 200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
                else:
                    owner._answer(self, 404, "not found\n")

            def log_message(self, format: str, *args: object) -> None:
                pass  # no per-request noise in the agent's log

        self._server = ThreadingHTTPServer((address, port), Handler)
        self._server.daemon_threads = True
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
