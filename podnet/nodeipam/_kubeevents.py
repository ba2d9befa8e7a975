"""Events through the API, written as client-go's event recorder writes them for
kube-controller-manager's node IPAM (pkg/controller/util/node RecordNodeStatusChange):

    involvedObject  {apiVersion: v1, kind: Node, name, uid}   (no namespace: Nodes have none)
    namespace       default                                  (a cluster-scoped object's)
    name            <node>.<creation time in Unix nanoseconds, hex>
    type            Normal
    reason          CIDRNotAvailable | CIDRAssignmentFailed
    message         "Node <node> status is now: <reason>"
    source          {component: cidrAllocator}; reportingComponent the same

A repeat (same object, type, reason, message) is aggregated as client-go does: the first
event's `count` and `lastTimestamp` are patched instead of creating another. Writes run
on one background thread, so a burst of events never holds up allocation; a failed write
is logged and dropped (an event is not worth retrying for).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from lightkube import ApiError, Client
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

log = logging.getLogger("podnet.nodeipam")

COMPONENT = "cidrAllocator"
NORMAL = "Normal"
EVENT_NAMESPACE = "default"


@dataclass
class _Recorded:
    name: str
    count: int


class KubeEventRecorder:
    def __init__(self, client: Client, *, component: str = COMPONENT) -> None:
        self.client = client
        self.component = component
        self._seen: dict[tuple[str, str, str, str, str], _Recorded] = {}
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events")

    def node_status_change(self, node: str, uid: str, status: str) -> None:
        """RecordNodeStatusChange: a Normal event with `status` as reason."""
        self.record(node, uid, NORMAL, status, f"Node {node} status is now: {status}")

    def record(self, node: str, uid: str, type: str, reason: str, message: str) -> None:
        now = datetime.now(UTC)
        try:
            self._writer.submit(self._write, node, uid, type, reason, message, now)
        except RuntimeError:
            pass  # closed: the controller is stopping

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking events; wait up to `timeout` for the ones queued."""
        done = threading.Event()
        try:
            self._writer.submit(done.set)
        except RuntimeError:
            return
        done.wait(timeout)
        self._writer.shutdown(wait=False, cancel_futures=True)

    def _write(
        self, node: str, uid: str, type: str, reason: str, message: str, when: datetime
    ) -> None:
        key = (node, uid, type, reason, message)
        with self._lock:
            seen = self._seen.get(key)
        try:
            if seen is not None:
                seen.count += 1
                patch = {"count": seen.count, "lastTimestamp": _stamp(when)}
                self.client.patch(
                    Event, seen.name, patch, namespace=EVENT_NAMESPACE,
                    patch_type=PatchType.STRATEGIC,
                )  # fmt: skip
                return
            name = f"{node}.{time.time_ns():x}"
            event = Event(
                metadata=ObjectMeta(name=name, namespace=EVENT_NAMESPACE),
                involvedObject=ObjectReference(apiVersion="v1", kind="Node", name=node, uid=uid),
                type=type,
                reason=reason,
                message=message,
                source=EventSource(component=self.component),
                reportingComponent=self.component,
                reportingInstance="",
                firstTimestamp=when,
                lastTimestamp=when,
                count=1,
            )
            self.client.create(event, namespace=EVENT_NAMESPACE)
            with self._lock:
                self._seen[key] = _Recorded(name, 1)
        except ApiError as exc:
            if seen is not None and exc.status.code == 404:
                with self._lock:  # expired (event TTL): the next repeat starts a new one
                    self._seen.pop(key, None)
            log.warning("could not record event %s for node %s: %s", reason, node, exc)
        except (httpx.HTTPError, OSError) as exc:
            log.warning("could not record event %s for node %s: %s", reason, node, exc)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
