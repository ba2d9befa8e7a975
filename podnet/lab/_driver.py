"""The sandbox driver of one lab node: kubelet's part for pod networking, through the
Kubernetes API with the node's own identity (`system:node:NAME`).

It lists and watches the Pods bound to its node (fieldSelector spec.nodeName=NAME), starts
a sandbox with the node's runtime for each (podnet's runtime library, or RunPodSandbox on
the node's containerd) and reports `status.podIP`, `podIPs`, `hostIP` and phase Running
through pods/status, which NodeRestriction lets it write for its own pods only. A Pod
that is deleted has its sandbox stopped (CNI DEL frees the address); sandboxes without a
Pod (deleted while the driver was down) are stopped at every relist. A Pod deleted
gracefully (metadata.deletionTimestamp set) has its sandbox stopped, and is then deleted
for good, as kubelet does. A 410 Expired watch is answered with a relist, as client-go's
reflector does. A sandbox that fails to start
gets kubelet's FailedCreatePodSandBox event and is tried again after a back-off that
doubles up to BACKOFF_MAX.

It also keeps the Node's heartbeat as kubelet does: its Lease in kube-node-lease renewed
every HEARTBEAT_SECONDS, and the Ready condition (reason KubeletReady) in the Node's
status, written at start and every NODE_STATUS_SECONDS (lastHeartbeatTime), so `kubectl
get nodes` shows Ready (and says so again within a beat when the node lifecycle
controller, `_lifecycle`, marked it Unknown). When the driver dies, the lab's restarter
starts it again; one that stays dead stops renewing the Lease, and the node lifecycle
controller marks the node NotReady after the grace period.

The client is the official Kubernetes Python client; Pods are read as the JSON the API
server sends (`_kube`: the client's models cost a millisecond of CPU per Pod). The
driver runs on the host side of the lab (as the lab's CLI does) and reaches the API
server on its loopback listener.

Starts run in a pool of WORKERS threads, one piece of work per pod at a time, so pods
bound together start together, as kubelet's pod workers do. The sandboxes it owns are
kept on disk (`OwnedPods`) without an fsync: every start records its pod before the
sandbox starts, and a flush there made the starts wait for each other's disk writes;
after a power loss the namespaces they name are gone with the machine's state anyway.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import functools
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote, unquote

from podnet.lab._kube import Object, call_json, core_v1, follow_pods, meta, spec, status
from podnet.lab._node_runtime import NodeRuntime
from podnet.runtime import Sandbox

log = logging.getLogger(__name__)

WORKERS = 8
RETRY_SECONDS = 1.0
BACKOFF_BASE = 1.0
BACKOFF_MAX = 10.0
HEARTBEAT_SECONDS = 10.0
LEASE_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds
NODE_STATUS_SECONDS = 60.0
LEASE_NAMESPACE = "kube-node-lease"


def _read_owned(path: str) -> list[str]:
    try:
        with open(path) as handle:
            keys = json.load(handle)
    except (OSError, ValueError):
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


class OwnedPods:
    """The pods (namespace/name) whose sandboxes the driver started, one empty file per
    pod in `directory`, named by its key: recording one is a file created, not the whole
    list written again under a lock (pods starting together queued on that). A list in
    `directory`.json (what drivers kept before) is taken over at start."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, mode=0o700, exist_ok=True)
        legacy = f"{directory}.json"
        for key in _read_owned(legacy):
            self.add(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(legacy)

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, quote(key, safe=""))

    def keys(self) -> set[str]:
        return {unquote(name) for name in os.listdir(self.directory) if not name.startswith(".")}

    def add(self, key: str) -> None:
        os.close(os.open(self._path(key), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))

    def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(key))


def host_ports(pod: Object) -> list[dict[str, Any]]:
    """The Pod's hostPorts as kubelet hands them to the runtime (CRI port_mappings): every
    container port with a hostPort, protocol lower-cased for CNI's portMappings."""
    out: list[dict[str, Any]] = []
    for container in spec(pod).get("containers") or []:
        for port in container.get("ports") or []:
            if not port.get("hostPort"):
                continue
            entry: dict[str, Any] = {
                "hostPort": port["hostPort"],
                "containerPort": port.get("containerPort"),
                "protocol": str(port.get("protocol") or "TCP").lower(),
            }
            if port.get("hostIP"):
                entry["hostIP"] = port["hostIP"]
            out.append(entry)
    return out


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _micro_stamp(when: float) -> datetime.datetime:
    """A Lease's renewTime (a MicroTime), as the client wants it: a datetime."""
    return datetime.datetime.fromtimestamp(when, tz=datetime.UTC)


def pod_key(pod: Object) -> str:
    return f"{meta(pod).get('namespace')}/{meta(pod).get('name')}"


class SandboxDriver:
    def __init__(
        self,
        node: str,
        runtime: NodeRuntime,
        kubeconfig: str,
        *,
        host_ip: str,
        owned_dir: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        # The sandboxes this driver started for Pod objects (kept on disk across restarts):
        # only those are stopped when their Pod is gone; `podnet lab pod run` starts
        # sandboxes no Pod stands for, which are not the driver's business.
        self.owned_pods = OwnedPods(owned_dir)
        self._owned: set[str] = self.owned_pods.keys()
        self.runtime = runtime
        self.host_ip = host_ip
        # Imported here: the client takes a second to import, and every `podnet` command
        # imports the lab.
        from kubernetes import client

        self._client = client
        self.api = core_v1(kubeconfig)
        self._clock = clock
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._next: dict[str, Callable[[], None]] = {}  # work that came while busy
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "sandbox")
        self._failures: dict[str, int] = {}  # failed starts in a row, per pod
        self._timers: list[threading.Timer] = []
        self._status_written = 0.0

    @property
    def selector(self) -> str:
        return f"spec.nodeName={self.node}"

    def run(self, stop: threading.Event) -> None:
        beats = threading.Thread(target=self._heartbeats, args=(stop,), daemon=True)
        beats.start()
        follow_pods(
            self.api, stop, relist=self.relist, handle=self.handle, log=log, who=self.node,
            retry_seconds=RETRY_SECONDS, field_selector=self.selector,
        )  # fmt: skip
        for timer in self._timers:
            timer.cancel()
        self._pool.shutdown(wait=True)

    # -- heartbeat ---------------------------------------------------------------------
    def _heartbeats(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.heartbeat()
            except Exception as exc:  # the API server away: the next beat tries again
                log.warning("%s: heartbeat: %s", self.node, exc)
            stop.wait(HEARTBEAT_SECONDS)

    def heartbeat(self) -> None:
        """Renew the node's Lease; write the Ready condition when due, and at once when it
        is not True (the node lifecycle controller marks a node it stopped hearing from
        Unknown: a driver that is back says Ready within a beat, as kubelet does)."""
        now = self._clock()
        self._renew_lease(now)
        node = call_json(self.api.read_node, self.node)
        ready = next(
            (c for c in status(node).get("conditions") or [] if c.get("type") == "Ready"), None
        )
        ready_now = ready is not None and ready.get("status") == "True"
        if ready_now and now - self._status_written < NODE_STATUS_SECONDS:
            return
        stamp = _stamp(now)
        since = str(ready.get("lastTransitionTime") or stamp) if ready_now and ready else stamp
        condition = {
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "the lab's sandbox driver is posting ready status",
            "lastHeartbeatTime": stamp, "lastTransitionTime": since,
        }  # fmt: skip
        call_json(self.api.patch_node_status, self.node, {"status": {"conditions": [condition]}})
        self._status_written = now

    def _renew_lease(self, now: float) -> None:
        client = self._client
        coordination = client.CoordinationV1Api(self.api.api_client)
        renew = _micro_stamp(now)
        try:
            lease = coordination.read_namespaced_lease(self.node, LEASE_NAMESPACE)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            body = client.V1Lease(
                metadata=client.V1ObjectMeta(name=self.node, namespace=LEASE_NAMESPACE),
                spec=client.V1LeaseSpec(
                    holder_identity=self.node,
                    lease_duration_seconds=LEASE_SECONDS,
                    renew_time=renew,
                ),
            )
            coordination.create_namespaced_lease(LEASE_NAMESPACE, body)
            return
        lease.spec.holder_identity = self.node
        lease.spec.lease_duration_seconds = LEASE_SECONDS
        lease.spec.renew_time = renew
        # An update with the version read: a conflict means someone else wrote it; the
        # next beat reads it again.
        coordination.replace_namespaced_lease(self.node, LEASE_NAMESPACE, lease)

    def relist(self) -> str:
        pods = call_json(self.api.list_pod_for_all_namespaces, field_selector=self.selector)
        wanted = {pod_key(pod): pod for pod in pods.get("items") or []}
        version = str(meta(pods).get("resourceVersion") or "")
        log.info("%s: %d pod(s) bound here at resourceVersion %s", self.node, len(wanted),
                 version or "?")  # fmt: skip
        for sandbox in self.runtime.pods(self.node):
            if sandbox.key in self._owned and sandbox.key not in wanted:
                self._submit(sandbox.key, functools.partial(self._stop, sandbox))
        for pod in wanted.values():
            self.handle("MODIFIED", pod)
        return version

    def handle(self, kind: str, pod: Object) -> None:
        key = pod_key(pod)
        if kind == "DELETED":
            self._failures.pop(key, None)
            self._submit(key, lambda: self._stop_key(key))
        elif kind in ("ADDED", "MODIFIED") and meta(pod).get("deletionTimestamp"):
            self._submit(key, lambda: self._terminate(pod))
        elif kind in ("ADDED", "MODIFIED"):
            if not status(pod).get("podIP"):
                self._submit(key, lambda: self._start(pod))

    def _submit(self, key: str, work: Callable[[], None]) -> None:
        """Run `work` for the pod in the pool, one piece of work per pod at a time; work
        that comes while one runs is kept (the latest only) and runs right after it."""
        with self._lock:
            if key in self._busy:
                self._next[key] = work
                return
            self._busy.add(key)

        def run(work: Callable[[], None]) -> None:
            while True:
                try:
                    work()
                except Exception:
                    log.exception("%s: pod %s", self.node, key)
                with self._lock:
                    follow_up = self._next.pop(key, None)
                    if follow_up is None:
                        self._busy.discard(key)
                        return
                work = follow_up

        self._pool.submit(run, work)

    def _find(self, key: str) -> Sandbox | None:
        # That pod's record alone: every start asks, and listing reads every sandbox's.
        namespace, name = key.split("/", 1)
        return self.runtime.pod(self.node, name, namespace)

    def _start(self, pod: Object) -> None:
        key = pod_key(pod)
        name, namespace = str(meta(pod).get("name")), str(meta(pod).get("namespace"))
        sandbox = self._find(key)
        if sandbox is None or not sandbox.ip:
            self._own(key, True)
            started = time.monotonic()
            try:
                sandbox = self.runtime.run_pod(self.node, name, namespace, ports=host_ports(pod))
            except Exception as exc:
                self._failed(pod, exc)
                return
            # How long the sandbox itself took (bench.apiserver reads it: a pod's start
            # through the API, less this, is the API's part).
            took = (time.monotonic() - started) * 1000
            log.info(
                "%s: started %s with %s in %.1f ms", self.node, key, ", ".join(sandbox.ips), took
            )
        self._failures.pop(key, None)
        now = _stamp(self._clock())
        report = {
            "status": {
                "phase": "Running",
                "podIP": sandbox.ip,
                "podIPs": [{"ip": ip} for ip in sandbox.ips],
                "hostIP": self.host_ip,
                "hostIPs": [{"ip": self.host_ip}],
                "startTime": now,
                "conditions": [
                    {"type": kind, "status": "True", "lastTransitionTime": now}
                    for kind in ("PodReadyToStartContainers", "Initialized", "Ready",
                                 "ContainersReady")
                ],
                # The sandbox is all a lab pod runs: its containers count as started in it.
                "containerStatuses": [
                    {"name": c.get("name"), "image": c.get("image"), "imageID": "", "ready": True,
                     "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
                    for c in spec(pod).get("containers") or []
                ],
            }
        }  # fmt: skip
        try:
            call_json(self.api.patch_namespaced_pod_status, name, namespace, report)
        except self._client.ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: the sandbox goes too
                self._stop(sandbox)
                return
            raise

    def _failed(self, pod: Object, exc: Exception) -> None:
        """kubelet's answer to a sandbox that did not start: an event, and a retry after
        a back-off."""
        key = pod_key(pod)
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(BACKOFF_BASE * 2 ** (failures - 1), BACKOFF_MAX)
        message = f"Failed to create pod sandbox: {exc}"
        log.warning("%s: %s: %s; again in %gs", self.node, key, message, delay)
        self._event(pod, "FailedCreatePodSandBox", message)
        timer = threading.Timer(
            delay, self._retry, args=(meta(pod).get("name"), meta(pod).get("namespace"))
        )
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _retry(self, name: str, namespace: str) -> None:
        try:
            pod = call_json(self.api.read_namespaced_pod, name, namespace)
        except self._client.ApiException as exc:
            if exc.status == 404:
                self._failures.pop(f"{namespace}/{name}", None)
                return
            log.warning("%s: %s/%s: %s", self.node, namespace, name, exc.reason)
            return  # the next relist sees it
        except Exception as exc:
            log.warning("%s: %s/%s: %s", self.node, namespace, name, exc)
            return
        if spec(pod).get("nodeName") == self.node:
            self.handle("MODIFIED", pod)

    def _event(self, pod: Object, reason: str, message: str) -> None:
        now = _stamp(self._clock())
        name, namespace = meta(pod).get("name"), meta(pod).get("namespace")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{secrets.token_hex(8)}", "namespace": namespace},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name,
                               "namespace": namespace, "uid": meta(pod).get("uid")},
            "reason": reason, "message": message[:1024], "type": "Warning",
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet", "reportingInstance": self.node,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }  # fmt: skip
        try:
            call_json(self.api.create_namespaced_event, namespace, cast(Any, event))
        except Exception as exc:  # an event is worth no failure
            log.info("%s: event %s: %s", self.node, reason, exc)

    def _terminate(self, pod: Object) -> None:
        """A graceful deletion: stop the sandbox (CNI DEL), then delete the Pod for good
        (grace period 0, this very pod by its uid), as kubelet does once it has stopped
        the pod's containers."""
        key = pod_key(pod)
        self._stop_key(key)
        options = self._client.V1DeleteOptions(
            grace_period_seconds=0,
            preconditions=self._client.V1Preconditions(uid=meta(pod).get("uid")),
        )
        try:
            call_json(
                self.api.delete_namespaced_pod,
                meta(pod).get("name"),
                meta(pod).get("namespace"),
                body=options,
                grace_period_seconds=0,
            )
        except self._client.ApiException as exc:
            if exc.status not in (404, 409):  # gone, or another pod of that name by now
                raise
        log.info("%s: %s terminated", self.node, key)

    def _stop_key(self, key: str) -> None:
        if key not in self._owned:
            return
        sandbox = self._find(key)
        if sandbox is not None:
            self._stop(sandbox)

    def _own(self, key: str, owned: bool) -> None:
        # On disk first: a sandbox is started only once its pod is recorded as ours. One
        # pod's work runs at a time (`_submit`), so its file has one writer.
        if owned:
            self.owned_pods.add(key)
        else:
            self.owned_pods.discard(key)
        with self._lock:
            if owned:
                self._owned.add(key)
            else:
                self._owned.discard(key)

    def _stop(self, sandbox: Sandbox) -> None:
        self.runtime.remove_pod(self.node, sandbox)
        self._own(sandbox.key, False)
        log.info("%s: stopped %s, %s released", self.node, sandbox.key, sandbox.ip)
