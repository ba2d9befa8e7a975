"""The lab's node lifecycle controller: kube-controller-manager's part that notices a node
whose kubelet stopped posting (here: whose sandbox driver died), with the controller's
identity (`system:kube-controller-manager`).

Every MONITOR_SECONDS (--node-monitor-period) it reads the Nodes and their Leases in
kube-node-lease. A node is heard from when its Lease's renewTime or its Ready
condition's lastHeartbeatTime changes; as kube-controller-manager does, it keeps the
time it *saw* the change (its own clock), not the stamps the node wrote. A node not heard
from for the grace period (--node-monitor-grace-period, 50 s since Kubernetes 1.32) gets
its conditions set to Unknown: reason NodeStatusUnknown, "Kubelet stopped posting node
status." (NodeStatusNeverUpdated, "Kubelet never posted node status.", for a Ready
condition never posted), lastTransitionTime now, lastHeartbeatTime kept. `kubectl get
nodes` then shows NotReady and the lab's scheduler places no pod there; the node's
driver, when it runs again, reports Ready at its next heartbeat. (kube-controller-manager
also taints such a node node.kubernetes.io/unreachable and evicts its pods after 5
minutes; the lab does neither.)

It runs in the lab's scheduler daemon, beside the scheduler (both are the lab's control
plane on the host side), with its own client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from podnet.lab._kube import Object, call_json, meta, status

log = logging.getLogger(__name__)

MONITOR_SECONDS = 5.0
GRACE_SECONDS = 50.0
LEASE_NAMESPACE = "kube-node-lease"
# The conditions kubelet posts; those the node has are set to Unknown with Ready.
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _ready(node: Object) -> Object | None:
    conditions = status(node).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


class NodeLifecycle:
    def __init__(
        self,
        kubeconfig: str,
        *,
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        # Imported here: the client takes a second to import, and every `podnet` command
        # imports the lab.
        from kubernetes import client, config

        self.api = client.CoreV1Api(
            config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call]
        )
        self.leases = client.CoordinationV1Api(self.api.api_client)
        self.grace = grace
        self._clock, self._wall_clock = clock, wall_clock
        # node -> (what was last seen of its heartbeats, when this controller saw it change)
        self._heard: dict[str, tuple[tuple[str, str], float]] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.monitor()
            except Exception as exc:  # the API server away: the next round tries again
                log.warning("node lifecycle: %s", exc)
            stop.wait(MONITOR_SECONDS)

    def monitor(self) -> list[str]:
        """One round; returns the nodes it marked Unknown."""
        nodes = call_json(self.api.list_node).get("items") or []
        leases = call_json(self.leases.list_namespaced_lease, LEASE_NAMESPACE).get("items") or []
        renewed = {
            str(meta(lease).get("name")): str((lease.get("spec") or {}).get("renewTime") or "")
            for lease in leases
        }
        now = self._clock()
        marked = []
        for node in nodes:
            name = str(meta(node).get("name"))
            ready = _ready(node)
            beats = (renewed.get(name, ""), str((ready or {}).get("lastHeartbeatTime") or ""))
            seen = self._heard.get(name)
            if seen is None or seen[0] != beats:
                self._heard[name] = (beats, now)
                continue
            if now - seen[1] <= self.grace:
                continue
            if ready is not None and ready.get("status") == "Unknown":
                continue  # marked already
            self._mark_unknown(name, node, ready)
            marked.append(name)
        for gone in set(self._heard) - {str(meta(n).get("name")) for n in nodes}:
            del self._heard[gone]
        return marked

    def _mark_unknown(self, name: str, node: Object, ready: Object | None) -> None:
        now = _stamp(self._wall_clock())
        conditions: list[dict[str, Any]] = []
        for condition in status(node).get("conditions") or []:
            if condition.get("type") in CONDITIONS and condition.get("status") != "Unknown":
                conditions.append(
                    {**condition, "status": "Unknown", "reason": "NodeStatusUnknown",
                     "message": "Kubelet stopped posting node status.",
                     "lastTransitionTime": now}
                )  # fmt: skip
        if ready is None:
            conditions.append(
                {"type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                 "message": "Kubelet never posted node status.", "lastHeartbeatTime": None,
                 "lastTransitionTime": now}
            )  # fmt: skip
        call_json(self.api.patch_node_status, name, {"status": {"conditions": conditions}})
        log.warning("node %s: not heard from for %gs; its conditions are Unknown", name, self.grace)
