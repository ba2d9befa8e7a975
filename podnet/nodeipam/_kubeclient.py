"""The controller's door to the Kubernetes API: credentials, and Node list+watch.

Credentials as kube-controller-manager finds them: `--kubeconfig` if given, else the
pod's service account (in-cluster: token, CA and namespace under
/var/run/secrets/kubernetes.io/serviceaccount, KUBERNETES_SERVICE_HOST/PORT), else a
one-line error. The client is lightkube (built on httpx, typed models).

`NodeReflector` is client-go's reflector for Nodes: list (in pages), then watch from the
list's resourceVersion with bookmarks, handing every change to a callback; a watch that
ends normally (the server's timeout) resumes from the last resourceVersion seen; 410 Gone
(the version left the server's window) relists at once; any other error relists after a
back-off that doubles up to 30 s and resets once a watch has been established.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from lightkube import ApiError, Client, ConfigError, KubeConfig
from lightkube.resources.core_v1 import Node
from lightkube.types import OnErrorAction, OnErrorResult

log = logging.getLogger("podnet.nodeipam")

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_LIST_PAGE = 500
_BACKOFF_FIRST, _BACKOFF_MAX = 0.8, 30.0
# client-go's reflector asks the server to end a watch after 5-10 minutes (random, so
# that many clients do not reconnect at once).
_WATCH_MIN_SECONDS = 300


class KubeCredentialsError(Exception):
    """No usable credentials: no kubeconfig and not inside a cluster, or a bad file."""


def connect(
    kubeconfig: str | None,
    *,
    field_manager: str = "podnet-nodeipam",
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
    timeout: float = 10.0,
) -> Client:
    """A lightkube client from `kubeconfig`, else the in-cluster service account."""
    try:
        if kubeconfig:
            config = KubeConfig.from_file(kubeconfig)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config = KubeConfig.from_service_account(service_account_dir)
        else:
            raise KubeCredentialsError(
                "no --kubeconfig given and not running in a cluster "
                "(KUBERNETES_SERVICE_HOST is unset)"
            )
        return Client(
            config,
            field_manager=field_manager,
            trust_env=False,
            timeout=httpx.Timeout(timeout),
        )
    except (ConfigError, OSError, KeyError, ValueError) as exc:
        where = kubeconfig or service_account_dir
        raise KubeCredentialsError(f"cannot use the credentials in {where}: {exc}") from exc


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
