"""The lab's own calls to its API server (the CLI's `lab pod run/delete`, `lab get pods`):
a few requests over httpx with the admin kubeconfig the lab wrote. The lab's daemons
(drivers, scheduler) use the official client; the CLI uses this instead because that
client takes most of a second to import, for every command.

Errors come back as `LabError` carrying the API server's own message (its Status).
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from podnet.lab._errors import LabError

Object = dict[str, Any]
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
_CONNECT_SECONDS = 5.0


class APIError(LabError):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


class LabAPI:
    def __init__(self, kubeconfig: str) -> None:
        try:
            with open(kubeconfig) as handle:
                config = json.load(handle)
            cluster = config["clusters"][0]["cluster"]
            token = config["users"][0]["user"]["token"]
            server, ca = str(cluster["server"]), str(cluster["certificate-authority"])
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise LabError(f"cannot read the lab's kubeconfig {kubeconfig}: {exc}") from exc
        self.client = httpx.Client(
            base_url=server,
            verify=ssl.create_default_context(cafile=ca),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=httpx.Timeout(30.0, connect=_CONNECT_SECONDS),
            trust_env=False,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> LabAPI:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Object:
        try:
            answer = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LabError(f"the lab's API server: {exc}") from exc
        body = _json(answer)
        if answer.status_code >= 400:
            raise APIError(
                answer.status_code,
                str(body.get("reason", "")),
                str(body.get("message") or f"HTTP {answer.status_code}"),
            )
        return body

    # -- pods --------------------------------------------------------------------------
    def create_pod(
        self,
        name: str,
        namespace: str,
        node: str | None,
        *,
        ports: Sequence[Mapping[str, Any]] = (),
    ) -> Object:
        """A Pod running the pause image; `ports` (portMappings entries) become its
        container's ports with hostPorts."""
        container: Object = {"name": name, "image": PAUSE_IMAGE}
        if ports:
            container["ports"] = [_container_port(p) for p in ports]
        spec: Object = {"containers": [container]}
        if node:
            spec["nodeName"] = node
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        return self._call("POST", f"/api/v1/namespaces/{quote(namespace)}/pods", json=body)

    def get_pod(self, name: str, namespace: str) -> Object:
        return self._call("GET", _pod_path(name, namespace))

    def delete_pod(self, name: str, namespace: str, *, grace_seconds: int | None = None) -> Object:
        params = {} if grace_seconds is None else {"gracePeriodSeconds": str(grace_seconds)}
        return self._call("DELETE", _pod_path(name, namespace), params=params)

    def list_pods(self) -> list[Object]:
        items = self._call("GET", "/api/v1/pods").get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def list_nodes(self) -> list[Object]:
        items = self._call("GET", "/api/v1/nodes").get("items") or []
        return [item for item in items if isinstance(item, dict)]

    def lease_holder(self, namespace: str, name: str) -> str:
        """The Lease's holderIdentity, "" when there is no such Lease."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace)}/leases/{quote(name)}"
        try:
            lease = self._call("GET", path)
        except APIError as exc:
            if exc.code == 404:
                return ""
            raise
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    def pod_events(self, namespace: str, uid: str) -> list[Object]:
        params = {"fieldSelector": f"involvedObject.uid={uid}"}
        found = self._call("GET", f"/api/v1/namespaces/{quote(namespace)}/events", params=params)
        return [e for e in found.get("items") or [] if isinstance(e, dict)]

    def watch_pod(
        self, name: str, namespace: str, resource_version: str, seconds: float
    ) -> Iterator[tuple[str, Object]]:
        """The pod's changes after `resource_version`, for up to `seconds`."""
        params = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(max(1, int(seconds + 0.999))),
        }
        path = f"/api/v1/namespaces/{quote(namespace)}/pods"
        try:
            with self.client.stream(
                "GET", path, params=params, timeout=httpx.Timeout(seconds + 5)
            ) as answer:
                if answer.status_code >= 400:
                    body = _json_bytes(answer.read())
                    raise APIError(
                        answer.status_code, str(body.get("reason", "")), str(body.get("message"))
                    )
                for line in answer.iter_lines():
                    if line.strip():
                        event = json.loads(line)
                        yield str(event.get("type")), event.get("object") or {}
        except httpx.HTTPError as exc:
            raise LabError(f"the lab's API server: {exc}") from exc

    def watch_pod_list(
        self, namespace: str, resource_version: str, seconds: float, started: Any = None
    ) -> Iterator[tuple[str, Object]]:
        """Every pod's changes in `namespace` (from now, or after `resource_version`)."""
        params = {"watch": "true", "timeoutSeconds": str(max(1, int(seconds)))}
        if resource_version:
            params["resourceVersion"] = resource_version
        path = f"/api/v1/namespaces/{quote(namespace)}/pods"
        with self.client.stream(
            "GET", path, params=params, timeout=httpx.Timeout(seconds + 5)
        ) as answer:
            if started is not None:
                started.set()
            for line in answer.iter_lines():
                if line.strip():
                    event = json.loads(line)
                    yield str(event.get("type")), event.get("object") or {}


def _container_port(mapping: Mapping[str, Any]) -> Object:
    port: Object = {
        "containerPort": int(mapping["containerPort"]),
        "hostPort": int(mapping["hostPort"]),
        "protocol": str(mapping.get("protocol") or "tcp").upper(),
    }
    if mapping.get("hostIP"):
        port["hostIP"] = str(mapping["hostIP"])
    return port


def _pod_path(name: str, namespace: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"


def _json(answer: httpx.Response) -> Object:
    return _json_bytes(answer.content)


def _json_bytes(data: bytes) -> Object:
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        return {"message": data[:200].decode(errors="replace")}
    return body if isinstance(body, dict) else {}


def node_ready(node: Object) -> bool:
    """The node's Ready condition is True (its driver's heartbeat)."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def pod_ip(pod: Object) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def wait_for_pod_ip(
    api: LabAPI, pod: Object, deadline: float, *, failed_reasons: tuple[str, ...]
) -> Object:
    """Follow the pod until status.podIP is set; LabError at `deadline`, at its deletion,
    or at an event of `failed_reasons` (what the node reports when the sandbox fails)."""
    meta = pod["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    version = str(meta.get("resourceVersion") or "")
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LabError(
                f"pod {namespace}/{name} has no IP yet ({_where(pod)}); it stays, `podnet lab "
                f"pod delete {name}` removes it"
            )
        try:
            for kind, obj in api.watch_pod(name, namespace, version, min(left, 2.0)):
                if kind == "ERROR":
                    version = ""
                    break
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind == "DELETED":
                    raise LabError(f"pod {namespace}/{name} was deleted before it got an IP")
                if kind != "BOOKMARK":
                    pod = obj
                if pod_ip(pod):
                    return pod
        except APIError as exc:
            if exc.code != 410:
                raise
            version = ""
        if not version:  # expired: start again from the object as it is now
            pod = api.get_pod(name, namespace)
            version = str(pod["metadata"].get("resourceVersion") or "")
            if pod_ip(pod):
                return pod
        for event in api.pod_events(namespace, str(meta.get("uid") or "")):
            if event.get("reason") in failed_reasons:
                raise LabError(str(event.get("message") or event.get("reason")))


def _where(pod: Object) -> str:
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return f"bound to {node}"
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("message"):
            return f"not scheduled: {condition['message']}"
    return "not scheduled yet"
