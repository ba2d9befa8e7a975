"""`APIServer`: the store, the watch cache and the HTTPS listeners put together."""

from __future__ import annotations

import logging
import socket
import ssl
import threading

from podnet.apiserver._auth import Tokens
from podnet.apiserver._fields import load_models
from podnet.apiserver._http import APIHTTPServer
from podnet.apiserver._pki import ServingFiles
from podnet.apiserver._registry import Registry
from podnet.apiserver._watch import DEFAULT_WINDOW, WatchCache
from podnet.store import Store

log = logging.getLogger(__name__)


def tls_context(files: ServingFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    context.set_alpn_protocols(["http/1.1"])
    return context


class APIServer:
    """Serves the Kubernetes API over `store` on any number of listeners."""

    def __init__(
        self,
        store: Store,
        *,
        tokens: Tokens,
        serving: ServingFiles,
        watch_window: int = DEFAULT_WINDOW,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.registry = Registry(store)
        self.registry.ensure_system_namespaces()
        self.cache = WatchCache(store, window=watch_window)
        threading.Thread(target=load_models, name="apiserver-models", daemon=True).start()
        self.context = tls_context(serving)
        self._servers: list[APIHTTPServer] = []
        self._threads: list[threading.Thread] = []

    def listen(self, host: str, port: int = 0) -> tuple[str, int]:
        """Serve on host:port (0: any free port); returns the address bound."""
        return self._serve(APIHTTPServer((host, port), self, self.context))

    def listen_on(self, sock: socket.socket) -> tuple[str, int]:
        """Serve on a socket bound (and listening) elsewhere, e.g. inside a namespace."""
        return self._serve(APIHTTPServer(sock.getsockname()[:2], self, self.context, sock=sock))

    def _serve(self, server: APIHTTPServer) -> tuple[str, int]:
        host, port = server.bound()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name=f"apiserver-{host}:{port}",
        )
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        log.info("serving the Kubernetes API on https://%s:%d", host, port)
        return host, port

    def close(self) -> None:
        self.cache.close()  # ends the watch streams
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
