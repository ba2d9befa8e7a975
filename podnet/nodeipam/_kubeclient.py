"""The controller's door to the Kubernetes API: its client, and Node list+watch.

Credentials as kube-controller-manager finds them (podnet.kube): `--kubeconfig` if given,
else the pod's service account, else a one-line error. The client is lightkube (built on
httpx, typed models).

`NodeReflector` is client-go's reflector for Nodes: list (in pages), then watch from the
list's resourceVersion with bookmarks, handing every change to a callback; a watch that
ends normally (the server's timeout) resumes from the last resourceVersion seen; 410 Gone
(the version left the server's window) relists at once; any other error relists after a
back-off that doubles up to 30 s and resets once a watch has been established.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Node
from lightkube.types import OnErrorAction, OnErrorResult

from podnet.kube import REQUEST_SECONDS, connect

log = logging.getLogger("podnet.nodeipam")

FIELD_MANAGER = "podnet-nodeipam"
_LIST_PAGE = 500
_BACKOFF_FIRST, _BACKOFF_MAX = 0.8, 30.0
# client-go's reflector asks the server to end a watch after 5-10 minutes (random, so
# that many clients do not reconnect at once).
_WATCH_MIN_SECONDS = 300


def kube_client(kubeconfig: str | None, *, timeout: float = REQUEST_SECONDS) -> Client:
    """podnet.kube's client (`--kubeconfig`, else in-cluster), writing as the controller;
    `timeout` bounds every request but a watch's."""
    return connect(kubeconfig, field_manager=FIELD_MANAGER, timeout=timeout)


@dataclass(frozen=True)
class NodeEvent:
    """A watch event (ADDED, MODIFIED, DELETED), or SYNC: a full listing in `nodes`."""

    type: str
    node: Node | None = None
    nodes: tuple[Node, ...] = ()


def _raise_every_error(_error: Exception, _count: int) -> OnErrorResult:
    return OnErrorResult(OnErrorAction.RAISE)


class NodeReflector:
    """List+watch Nodes in a daemon thread, handing each NodeEvent to `deliver`."""

    def __init__(
        self,
        client: Client,
        deliver: Callable[[NodeEvent], None],
        stop: threading.Event,
        *,
        name: str = "node-reflector",
    ) -> None:
        self.client = client
        self.deliver = deliver
        self.stop = stop
        self.relists = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> NodeReflector:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while not self.stop.is_set():
            try:
                version = self._list()
                backoff = _BACKOFF_FIRST
                self._watch(version)
            except ApiError as exc:
                if exc.status.code == 410:
                    log.info("node watch: %s; relisting", exc.status.message)
                    continue
                log.warning("node list/watch: %s; again in %.1fs", exc.status.message, backoff)
            except (httpx.HTTPError, OSError) as exc:
                log.warning("node list/watch: %s; again in %.1fs", exc, backoff)
            self.stop.wait(backoff * random.uniform(1.0, 1.2))
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _list(self) -> str:
        listing = self.client.list(Node, chunk_size=_LIST_PAGE)
        nodes = tuple(listing)
        self.relists += 1
        self.deliver(NodeEvent("SYNC", nodes=nodes))
        return listing.resourceVersion

    def _watch(self, version: str) -> None:
        for kind, node in self._stream(version):
            if self.stop.is_set():
                return
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.deliver(NodeEvent(kind, node=node))
            # BOOKMARK: only moves the resourceVersion a reconnect resumes from.

    def _stream(self, version: str) -> Iterator[tuple[str, Node]]:
        """lightkube's watch loop (it resumes from the last version after the server ends a
        watch) with `allowWatchBookmarks`, which its Client.watch does not send."""
        generic: Any = self.client._client  # lightkube's GenericSyncClient
        request = generic.prepare_request(
            "list",
            res=Node,
            watch=True,
            params={
                "resourceVersion": version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": int(_WATCH_MIN_SECONDS * random.uniform(1.0, 2.0)),
            },
        )
        stream: Iterator[tuple[str, Node]] = generic.watch(request, on_error=_raise_every_error)
        return stream
