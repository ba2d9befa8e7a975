"""The sandbox driver of one lab node: kubelet's part for pod networking, through the
Kubernetes API with the node's own identity (`system:node:NAME`).

It lists and watches the Pods bound to its node (fieldSelector spec.nodeName=NAME), starts
a sandbox with the node's runtime for each (podnet's runtime library, or RunPodSandbox on
the node's containerd) and reports `status.podIP`, `podIPs`, `hostIP` and phase Running
through pods/status, which NodeRestriction lets it write for its own pods only. A Pod
that is deleted has its sandbox stopped (CNI DEL frees the address); sandboxes without a
Pod (deleted while the driver was down) are stopped at every relist. A 410 Expired watch
is answered with a relist, as client-go's reflector does.

The client is the official Kubernetes Python client. The driver runs on the host side of
the lab (as the lab's CLI does) and reaches the API server on its loopback listener.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from podnet.cni import atomic_write
from podnet.lab._node_runtime import NodeRuntime
from podnet.runtime import Sandbox

log = logging.getLogger(__name__)

WORKERS = 8
RETRY_SECONDS = 1.0
WATCH_SECONDS = 300


def _read_owned(path: str) -> list[str]:
    try:
        with open(path) as handle:
            keys = json.load(handle)
    except (OSError, ValueError):
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


def host_ports(pod: Any) -> list[dict[str, Any]]:
    """The Pod's hostPorts as kubelet hands them to the runtime (CRI port_mappings): every
    container port with a hostPort, protocol lower-cased for CNI's portMappings."""
    out: list[dict[str, Any]] = []
    for container in (pod.spec.containers or []) if pod.spec else []:
        for port in container.ports or []:
            if not port.host_port:
                continue
            entry: dict[str, Any] = {
                "hostPort": port.host_port,
                "containerPort": port.container_port,
                "protocol": (port.protocol or "TCP").lower(),
            }
            if port.host_ip:
                entry["hostIP"] = port.host_ip
            out.append(entry)
    return out


def pod_key(pod: Any) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


class SandboxDriver:
    def __init__(
        self,
        node: str,
        runtime: NodeRuntime,
        kubeconfig: str,
        *,
        host_ip: str,
        owned_file: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        # The sandboxes this driver started for Pod objects (kept on disk across restarts):
        # only those are stopped when their Pod is gone; `podnet lab pod run` starts
        # sandboxes no Pod stands for, which are not the driver's business.
        self.owned_file = owned_file
        self._owned: set[str] = set(_read_owned(owned_file))
        self.runtime = runtime
        self.host_ip = host_ip
        # Imported here: the client takes a second to import, and every `podnet` command
        # imports the lab.
        from kubernetes import client, config, watch

        self._client, self._watch = client, watch
        self.api = client.CoreV1Api(
            config.new_client_from_config(kubeconfig)  # type: ignore[no-untyped-call]
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "sandbox")

    @property
    def selector(self) -> str:
        return f"spec.nodeName={self.node}"

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                version = self.relist()
                stream = self._watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.api.list_pod_for_all_namespaces,
                    field_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    if stop.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
                        break
                    self.handle(str(event["type"]), event["object"])
            except self._client.ApiException as exc:
                if exc.status != 410:
                    log.warning("%s: API error %s %s; relisting", self.node, exc.status, exc.reason)
                    stop.wait(RETRY_SECONDS)
            except Exception as exc:  # the API server restarting, a network hiccup
                log.warning("%s: %s; relisting", self.node, exc)
                stop.wait(RETRY_SECONDS)
        self._pool.shutdown(wait=True)

    def relist(self) -> str:
        pods = self.api.list_pod_for_all_namespaces(field_selector=self.selector)
        wanted = {pod_key(pod): pod for pod in pods.items}
        log.info("%s: %d pod(s) bound here at resourceVersion %s", self.node, len(wanted),
                 pods.metadata.resource_version if pods.metadata else "?")  # fmt: skip
        for sandbox in self.runtime.pods(self.node):
            if sandbox.key in self._owned and sandbox.key not in wanted:
                self._submit(sandbox.key, functools.partial(self._stop, sandbox))
        for pod in wanted.values():
            self.handle("MODIFIED", pod)
        return str(pods.metadata.resource_version if pods.metadata else "")

    def handle(self, kind: str, pod: Any) -> None:
        key = pod_key(pod)
        if kind == "DELETED":
            self._submit(key, lambda: self._stop_key(key))
        elif kind in ("ADDED", "MODIFIED") and not pod.metadata.deletion_timestamp:
            if not (pod.status and pod.status.pod_ip):
                self._submit(key, lambda: self._start(pod))

    def _submit(self, key: str, work: Callable[[], None]) -> None:
        with self._lock:
            if key in self._busy:
                return  # the work in flight for this pod will see the latest state
            self._busy.add(key)

        def run() -> None:
            try:
                work()
            except Exception:
                log.exception("%s: pod %s", self.node, key)
            finally:
                with self._lock:
                    self._busy.discard(key)

        self._pool.submit(run)

    def _find(self, key: str) -> Sandbox | None:
        return next((s for s in self.runtime.pods(self.node) if s.key == key), None)

    def _start(self, pod: Any) -> None:
        key = pod_key(pod)
        sandbox = self._find(key)
        if sandbox is None or not sandbox.ip:
            self._own(key, True)
            sandbox = self.runtime.run_pod(
                self.node, pod.metadata.name, pod.metadata.namespace, ports=host_ports(pod)
            )
            log.info("%s: started %s with %s", self.node, key, sandbox.ip)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
        status = {
            "status": {
                "phase": "Running",
                "podIP": sandbox.ip,
                "podIPs": [{"ip": sandbox.ip}],
                "hostIP": self.host_ip,
                "hostIPs": [{"ip": self.host_ip}],
                "startTime": now,
                "conditions": [
                    {"type": "PodReadyToStartContainers", "status": "True",
                     "lastTransitionTime": now},
                ],
            }
        }  # fmt: skip
        try:
            self.api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, status)
        except self._client.ApiException as exc:
            if exc.status == 404:  # deleted meanwhile: the sandbox goes too
                self._stop(sandbox)
                return
            raise

    def _stop_key(self, key: str) -> None:
        if key not in self._owned:
            return
        sandbox = self._find(key)
        if sandbox is not None:
            self._stop(sandbox)

    def _own(self, key: str, owned: bool) -> None:
        with self._lock:
            if owned:
                self._owned.add(key)
            else:
                self._owned.discard(key)
            atomic_write(self.owned_file, json.dumps(sorted(self._owned)).encode())

    def _stop(self, sandbox: Sandbox) -> None:
        self.runtime.remove_pod(self.node, sandbox)
        self._own(sandbox.key, False)
        log.info("%s: stopped %s, %s released", self.node, sandbox.key, sandbox.ip)
