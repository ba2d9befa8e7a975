"""The lab's scheduler: kube-scheduler's part that the pod network needs. A Pod without
spec.nodeName is bound to the node with the fewest pods (ties: the first by name), through
the pods/binding subresource as kube-scheduler binds (the API server sets spec.nodeName and
the PodScheduled condition); the node's sandbox driver then starts its sandbox.

A node takes pods unless it is cordoned (spec.unschedulable) or its Ready condition says
it is not ready (kube-scheduler skips such nodes by their taints, which the node lifecycle
controller derives from that condition). A pod no node can take gets PodScheduled False
(reason Unschedulable, and a FailedScheduling event) and is tried again every
RETRY_SECONDS.

Once it follows the pods it holds the Lease kube-system/kube-scheduler, renewed every
LEASE_RENEW_SECONDS, as kube-scheduler's leader does (one scheduler, so no election): the
lab waits for it before `lab up` returns.

It watches every Pod and keeps which node each is bound to, counting its own bindings at
once (kube-scheduler's "assumed" pods), so pods created together spread out before the
watch reports their bindings. Only pods for the default scheduler are its business.
The client is the official Kubernetes Python client, with the scheduler's identity
(`system:kube-scheduler`); Pods and Nodes are read as the JSON the API server sends
(`_kube`: the client's models cost a millisecond of CPU per Pod, and the scheduler
hears of every change of every pod).
"""

from __future__ import annotations

import datetime
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from podnet.lab._kube import Object, call_json, core_v1, follow_pods, meta, spec, status

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"
LEASE_SECONDS = 15  # kube-scheduler's leader election defaults: 15 s, renewed within 10
LEASE_RENEW_SECONDS = 10.0
SCHEDULER_NAME = "default-scheduler"
_DONE_PHASES = ("Succeeded", "Failed")


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def node_takes_pods(node: Object) -> bool:
    """Not cordoned, and not reported not-ready (a node without the condition yet counts
    as ready: the lab's drivers report it within a heartbeat)."""
    if spec(node).get("unschedulable"):
        return False
    for condition in status(node).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return True


def pick_node(counts: dict[str, int], candidates: list[str]) -> str | None:
    """The candidate with the fewest pods; ties go to the first by name."""
    if not candidates:
        return None
    return min(sorted(candidates), key=lambda name: counts.get(name, 0))


class Scheduler:
    def __init__(self, kubeconfig: str, *, clock: Callable[[], float] = time.time) -> None:
        # Imported here: the client takes a second to import, and every `podnet` command
        # imports the lab.
        from kubernetes import client

        self._client = client
        self.api = core_v1(kubeconfig)
        self._clock = clock
        self.identity = f"{socket.gethostname()}_{uuid.uuid4()}"  # as kube-scheduler names itself
        self.bound: dict[str, str] = {}  # namespace/name -> node, of pods not done
        self.waiting: dict[str, Object] = {}  # pods no node could take yet
        # The watch and the retrier both schedule: one decision at a time, so that each
        # counts the bindings made before it.
        self._lock = threading.RLock()

    def run(self, stop: threading.Event) -> None:
        retrier = threading.Thread(target=self._retry_loop, args=(stop,), daemon=True)
        retrier.start()
        follow_pods(
            self.api, stop, relist=self.relist, handle=self.handle, log=log, who="scheduler",
            retry_seconds=RETRY_SECONDS,
        )  # fmt: skip

    def _retry_loop(self, stop: threading.Event) -> None:
        renewed = 0.0
        while not stop.wait(RETRY_SECONDS):
            try:
                self.retry_waiting()
                if self._clock() - renewed >= LEASE_RENEW_SECONDS:
                    self.renew_lease()
                    renewed = self._clock()
            except Exception as exc:  # the API server away: the next round tries again
                log.warning("retrying unscheduled pods: %s", exc)

    def renew_lease(self) -> None:
        """kube-system/kube-scheduler, the Lease kube-scheduler's leader holds: here it
        says the scheduler is up and following the pods (there is one: no election)."""
        client = self._client
        coordination = client.CoordinationV1Api(self.api.api_client)
        now = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        try:
            lease = coordination.read_namespaced_lease(LEASE_NAME, LEASE_NAMESPACE)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=LEASE_NAME, namespace=LEASE_NAMESPACE),
                spec=client.V1LeaseSpec(
                    holder_identity=self.identity, lease_duration_seconds=LEASE_SECONDS,
                    acquire_time=now, renew_time=now,
                ),
            )  # fmt: skip
            coordination.create_namespaced_lease(LEASE_NAMESPACE, body)
            return
        if lease.spec.holder_identity != self.identity:
            lease.spec.acquire_time = now
            lease.spec.lease_transitions = (lease.spec.lease_transitions or 0) + 1
        lease.spec.holder_identity = self.identity
        lease.spec.lease_duration_seconds = LEASE_SECONDS
        lease.spec.renew_time = now
        coordination.replace_namespaced_lease(LEASE_NAME, LEASE_NAMESPACE, lease)

    def relist(self) -> str:
        pods = call_json(self.api.list_pod_for_all_namespaces)
        with self._lock:
            self.bound.clear()
            self.waiting.clear()
            for pod in pods.get("items") or []:
                self.handle("ADDED", pod)
        self.renew_lease()  # following the pods from here on
        return str(meta(pods).get("resourceVersion") or "")

    def handle(self, kind: str, pod: Object) -> None:
        with self._lock:
            self._handle(kind, pod)

    def _handle(self, kind: str, pod: Object) -> None:
        key = f"{meta(pod).get('namespace')}/{meta(pod).get('name')}"
        done = status(pod).get("phase") in _DONE_PHASES
        if kind == "DELETED" or done:
            self.bound.pop(key, None)
            self.waiting.pop(key, None)
            return
        node = spec(pod).get("nodeName")
        if node:
            self.bound[key] = str(node)
            self.waiting.pop(key, None)
        elif key not in self.bound and self._ours(pod) and not meta(pod).get("deletionTimestamp"):
            self.schedule(key, pod)

    @staticmethod
    def _ours(pod: Object) -> bool:
        return spec(pod).get("schedulerName") in (None, "", SCHEDULER_NAME)

    def retry_waiting(self) -> None:
        with self._lock:
            for key, pod in list(self.waiting.items()):
                self.schedule(key, pod)

    def schedule(self, key: str, pod: Object) -> None:
        nodes = call_json(self.api.list_node).get("items") or []
        candidates = [
            str(meta(n)["name"]) for n in nodes if meta(n).get("name") and node_takes_pods(n)
        ]
        counts: dict[str, int] = {}
        for node in self.bound.values():
            counts[node] = counts.get(node, 0) + 1
        chosen = pick_node(counts, candidates)
        if chosen is None:
            first_time = key not in self.waiting
            self.waiting[key] = pod
            if first_time:
                self._unschedulable(pod, len(nodes))
            return
        name, namespace = meta(pod).get("name"), meta(pod).get("namespace")
        body = self._client.V1Binding(
            metadata=self._client.V1ObjectMeta(name=name, uid=meta(pod).get("uid")),
            target=self._client.V1ObjectReference(api_version="v1", kind="Node", name=chosen),
        )
        try:
            # The answer is a Status, which the client cannot decode into a V1Binding.
            call_json(self.api.create_namespaced_pod_binding, name, namespace, body)
        except self._client.ApiException as exc:
            if exc.status in (404, 409):  # deleted, or bound by someone else meanwhile
                self.waiting.pop(key, None)
                log.info("%s not bound: %s", key, exc.reason)
                return
            raise
        self.bound[key] = chosen
        self.waiting.pop(key, None)
        log.info("bound %s to %s", key, chosen)
        self._event(pod, "Scheduled", f"Successfully assigned {key} to {chosen}", "Normal")

    def _unschedulable(self, pod: Object, total: int) -> None:
        message = f"0/{total} nodes are available: no node takes pods (cordoned or not ready)."
        now = _stamp(self._clock())
        report = {
            "status": {
                "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": message, "lastTransitionTime": now, "lastProbeTime": None},
                ]
            }
        }  # fmt: skip
        name, namespace = meta(pod).get("name"), meta(pod).get("namespace")
        try:
            call_json(self.api.patch_namespaced_pod_status, name, namespace, report)
        except self._client.ApiException as exc:
            log.info("%s/%s: %s", namespace, name, exc.reason)
        self._event(pod, "FailedScheduling", message, "Warning")

    def _event(self, pod: Object, reason: str, message: str, kind: str) -> None:
        now = _stamp(self._clock())
        name, namespace = meta(pod).get("name"), meta(pod).get("namespace")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": name,
                "namespace": namespace,
                "uid": meta(pod).get("uid"),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": SCHEDULER_NAME},
            "reportingComponent": SCHEDULER_NAME,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            call_json(self.api.create_namespaced_event, namespace, cast(Any, event))
        except self._client.ApiException as exc:  # an event is worth no failure
            log.info("event %s for %s: %s", reason, name, exc.reason)
