"""Nodes through the Kubernetes API as the agent loop's `NodeSource` (flanneld's
`--kube-subnet-mgr`), with lightkube as the client.

What flannel's kube subnet manager does, and so what this does:
    - list the nodes, then watch them from the list's resourceVersion (bookmarks asked for,
      so a watch that is re-established resumes from a recent version); a watch the server
      cannot serve any more (410 Gone) or that fails makes the loop list again;
    - publish this node's lease by patching its annotations, a strategic merge patch of only
      the keys that differ, sent to the `status` subresource as flanneld sends it (so the
      agent needs `patch` on `nodes/status` only, as kube-flannel's ClusterRole grants);
    - once the network is up, set the node's NetworkUnavailable condition to False, reason
      FlannelIsUp, through `nodes/status`, as flanneld does.

lightkube (0.x, built on httpx as podnet is) is the client nodeipam uses too; its public
watch sends no `allowWatchBookmarks`, so the request is built with its request builder.
"""

from __future__ import annotations

import datetime
import logging
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import Node

from podnet.agent._lease import ANNOTATION_PREFIX
from podnet.kube import REQUEST_SECONDS

log = logging.getLogger("podnet.agent")

# Seconds a watch request may last on the server (timeoutSeconds); lightkube opens the next
# one from the last version it saw, and a closed watch's thread ends by then at the latest.
WATCH_SECONDS = 30
# The longest silence on a watch: past timeoutSeconds the server has closed it, so a watch
# quiet for longer sits on a dead connection and is ended (the loop lists again).
WATCH_SILENCE = WATCH_SECONDS + 15.0
# flanneld's condition, word for word (pkg/subnet/kube: CompleteLease)
NETWORK_UP_REASON = "FlannelIsUp"
NETWORK_UP_MESSAGE = "Flannel is running on this node"
# An administrator's override of the published address (k3s sets it from
# --node-external-ip): flanneld publishes it as public-ip(v6) instead of its own.
_OVERWRITES = {
    ANNOTATION_PREFIX + "public-ip": ANNOTATION_PREFIX + "public-ip-overwrite",
    ANNOTATION_PREFIX + "public-ipv6": ANNOTATION_PREFIX + "public-ipv6-overwrite",
}
_STATUS_GONE = 410
_NOT_FOUND = 404


@dataclass(frozen=True)
class KubeNode:
    """The parts of a v1 Node the agent reads."""

    name: str
    pod_cidrs: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(cls, node: Node) -> KubeNode:
        meta, spec = node.metadata, node.spec
        cidrs: tuple[str, ...] = ()
        if spec is not None:
            if spec.podCIDRs:
                cidrs = tuple(spec.podCIDRs)
            elif spec.podCIDR:
                cidrs = (spec.podCIDR,)
        assert meta is not None and meta.name is not None  # the API server sets both
        return cls(name=meta.name, pod_cidrs=cidrs, annotations=dict(meta.annotations or {}))


@dataclass(frozen=True)
class KubeNodeChange:
    name: str
    node: KubeNode | None  # None: deleted


class WatchEnded(Exception):
    """The watch cannot go on (the server's history moved past it, or it failed)."""


class KubeNodeWatch:
    """One watch stream, read by a thread into a queue, so that `get` can wait with a
    deadline (lightkube's watch iterator blocks until the next event)."""

    def __init__(self, client: Client, after: str) -> None:
        self._client = client
        self._changes: queue.Queue[KubeNodeChange | BaseException] = queue.Queue()
        self._closed = threading.Event()
        self.version = after
        self._thread = threading.Thread(
            target=self._read, args=(after,), name="node-watch", daemon=True
        )
        self._thread.start()

    def _read(self, after: str) -> None:
        try:
            for kind, obj in _watch_nodes(self._client, after):
                if self._closed.is_set():
                    return
                version = obj.metadata.resourceVersion if obj.metadata else None
                if version:
                    self.version = version
                if kind == "BOOKMARK":
                    continue
                node = KubeNode.from_object(obj)
                self._changes.put(KubeNodeChange(node.name, None if kind == "DELETED" else node))
        except ApiError as exc:
            self._changes.put(WatchEnded(_api_reason(exc)))
        except Exception as exc:  # HTTP, socket or decoding: the loop must hear of any end
            self._changes.put(WatchEnded(f"{type(exc).__name__}: {exc}"))

    def get(self, timeout: float | None = None) -> Sequence[KubeNodeChange]:
        """The changes that arrived within `timeout` (maybe none); WatchEnded once the
        watch cannot go on."""
        try:
            first = self._changes.get(timeout=timeout)
        except queue.Empty:
            return []
        batch: list[KubeNodeChange] = []
        item: KubeNodeChange | BaseException | None = first
        while item is not None:
            if isinstance(item, BaseException):
                if batch:  # hand over what came before the end; the end comes next time
                    self._changes.put(item)
                    return batch
                raise item
            batch.append(item)
            try:
                item = self._changes.get_nowait()
            except queue.Empty:
                item = None
        return batch

    def close(self) -> None:
        """Stop reading; the thread ends with its current request (WATCH_SECONDS at most)."""
        self._closed.set()


def _watch_nodes(client: Client, after: str) -> Iterator[tuple[str, Node]]:
    """lightkube's watch of all nodes from `after`, with bookmarks. Its public `watch` has
    no bookmark option, so the request is built with its own request builder and the
    parameter added (the watch driver already takes a BOOKMARK's resourceVersion)."""
    generic = client._client
    # lightkube reads a watch without a deadline; this one has WATCH_SILENCE per read.
    generic._watch_timeout = httpx.Timeout(REQUEST_SECONDS, read=WATCH_SILENCE)
    request = generic.prepare_request(
        "list",
        res=Node,
        watch=True,
        params={
            "resourceVersion": after,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        },
    )
    return generic.watch(request)  # type: ignore[no-any-return]


def _api_reason(exc: ApiError) -> str:
    status = exc.status
    return f"{status.code} {status.reason}: {status.message}"


class KubeNodeSource:
    def __init__(self, client: Client) -> None:
        self.client = client

    def list_nodes(self) -> tuple[Sequence[KubeNode], str]:
        listing = self.client.list(Node)
        nodes = [KubeNode.from_object(node) for node in listing]
        return nodes, listing.resourceVersion

    def watch_nodes(self, after: str) -> KubeNodeWatch:
        return KubeNodeWatch(self.client, after)

    def get_node(self, name: str) -> KubeNode | None:
        try:
            return KubeNode.from_object(self.client.get(Node, name))
        except ApiError as exc:
            if exc.status.code == _NOT_FOUND:
                return None
            raise

    def annotate_node(self, name: str, annotations: Mapping[str, str]) -> None:
        """Patch the annotations that differ (flanneld's two-way merge patch of the node),
        through nodes/status as flanneld does; nothing is sent when none differs. A
        public-ip(v6)-overwrite annotation on the node is published as public-ip(v6)."""
        current = self.get_node(name)
        if current is None:
            raise WatchEnded(f"node {name} does not exist")
        annotations = dict(annotations)
        for key, overwrite_key in _OVERWRITES.items():
            overwrite = current.annotations.get(overwrite_key, "")
            if key in annotations and overwrite and annotations[key] != overwrite:
                log.info(
                    "Overriding public ip with '%s' from node annotation '%s'",
                    overwrite,
                    overwrite_key,
                )
                annotations[key] = overwrite
        changed = {k: v for k, v in annotations.items() if current.annotations.get(k) != v}
        if not changed:
            return
        self.client.patch(Node.Status, name, {"metadata": {"annotations": changed}})

    def report_network_up(self, name: str) -> None:
        """NetworkUnavailable=False with flanneld's reason and message (nodes/status)."""
        now = _now()
        condition: dict[str, Any] = {
            "type": "NetworkUnavailable",
            "status": "False",
            "reason": NETWORK_UP_REASON,
            "message": NETWORK_UP_MESSAGE,
            "lastTransitionTime": now,
            "lastHeartbeatTime": now,
        }
        self.client.patch(Node.Status, name, {"status": {"conditions": [condition]}})

    def close(self) -> None:
        self.client.close()


def _now() -> str:
    """RFC 3339 to the second, UTC, as metav1.Time marshals."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
