"""A kubelet-side CRI v1 client: the calls kubelet makes to start and stop a pod's network.

Messages come from the `container-runtime-interface-api` package (`cri_api.v1.api_pb2`,
generated from kubernetes/cri-api with typed .pyi files). Its generated service stub is
untyped, so the few RuntimeService methods used here are bound on the channel directly,
with their full gRPC names.

grpc and pyroute2 do not mix in one process when pyroute2 forks its netns helper: grpc's
fork handlers crash the child (SIGSEGV). podnet.netlink never forks, and fork support is
switched off before grpc is first imported so that nothing else can trip on it either.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import grpc  # noqa: E402
from cri_api.v1 import api_pb2 as cri  # noqa: E402
from google.protobuf.message import Message  # noqa: E402

_SERVICE = "/runtime.v1.RuntimeService/"
DEFAULT_TIMEOUT = 30.0  # seconds; kubelet's default runtime request timeout is 2 minutes

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class CRIError(Exception):
    """A CRI call failed; `code` is the gRPC status code name (e.g. "UNKNOWN")."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method}: {code}: {details}")
        self.method = method
        self.code = code
        self.details = details


@dataclass(frozen=True)
class RuntimeVersion:
    runtime_name: str
    runtime_version: str
    runtime_api_version: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


@dataclass(frozen=True)
class PodMetadata:
    """What kubelet puts in PodSandboxMetadata; containerd hands it to CNI as K8S_POD_*."""

    name: str
    namespace: str = "default"
    uid: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class Sandbox:
    id: str
    metadata: PodMetadata
    state: str  # "SANDBOX_READY" or "SANDBOX_NOTREADY"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SandboxStatus:
    id: str
    metadata: PodMetadata
    state: str
    ip: str
    additional_ips: tuple[str, ...]
    # Only with verbose=True: the pod's network namespace, from containerd's runtime spec.
    netns_path: str | None


def _metadata(value: cri.PodSandboxMetadata) -> PodMetadata:
    return PodMetadata(value.name, value.namespace, value.uid, value.attempt)


def _netns_from_info(info: Mapping[str, str]) -> str | None:
    """containerd's verbose status carries its own view under info["info"]: the sandbox's
    OCI runtime spec, whose network namespace entry is the netns CNI was given."""
    raw = info.get("info")
    if not raw:
        return None
    try:
        spec = json.loads(raw)["runtimeSpec"]
        namespaces = spec["linux"]["namespaces"]
    except (ValueError, KeyError, TypeError):
        return None
    for namespace in namespaces:
        if namespace.get("type") == "network":
            path = namespace.get("path")
            return str(path) if path else None
    return None


class CRIClient:
    """Synchronous CRI v1 RuntimeService client over a containerd unix socket."""

    def __init__(self, socket_path: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._channel = grpc.insecure_channel(f"unix://{socket_path}")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CRIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        request: Req,
        response_type: type[Resp],
        *,
        timeout: float | None = None,
        wait_for_ready: bool | None = None,
    ) -> Resp:
        deserialize: Callable[[bytes], Resp] = response_type.FromString
        callable_ = self._channel.unary_unary(
            _SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=deserialize,
        )
        try:
            return callable_(
                request,
                timeout=self.timeout if timeout is None else timeout,
                wait_for_ready=wait_for_ready,
            )
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise CRIError(method, code, details or "") from exc

    def version(self, *, timeout: float | None = None) -> RuntimeVersion:
        response = self._call(
            "Version", cri.VersionRequest(version="v1"), cri.VersionResponse, timeout=timeout
        )
        return RuntimeVersion(
            response.runtime_name, response.runtime_version, response.runtime_api_version
        )

    def status(self) -> dict[str, Condition]:
        """The runtime's conditions by type: RuntimeReady and NetworkReady."""
        response = self._call("Status", cri.StatusRequest(), cri.StatusResponse)
        return {
            condition.type: Condition(
                condition.type, condition.status, condition.reason, condition.message
            )
            for condition in response.status.conditions
        }

    def network_ready(self) -> Condition:
        conditions = self.status()
        return conditions.get("NetworkReady") or Condition("NetworkReady", False, "absent", "")

    def run_pod_sandbox(
        self,
        pod: PodMetadata,
        *,
        labels: Mapping[str, str] | None = None,
        cgroup_parent: str = "",
        runtime_handler: str = "",
        port_mappings: Sequence[Mapping[str, Any]] = (),
    ) -> str:
        """Start a pod sandbox with its own network namespace, as kubelet does for every
        pod that is not hostNetwork; containerd runs CNI ADD before this returns.

        `cgroup_parent` is a cgroupfs path (kubelet passes /kubepods/...); empty means the
        runtime's default, /k8s.io for containerd. `port_mappings` are the pod's hostPorts
        as CNI's portMappings write them ({hostPort, containerPort, protocol, hostIP});
        containerd hands them to the plugins that declare the portMappings capability."""
        all_labels = {
            "io.kubernetes.pod.name": pod.name,
            "io.kubernetes.pod.namespace": pod.namespace,
            "io.kubernetes.pod.uid": pod.uid,
            **(labels or {}),
        }
        config = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(
                name=pod.name, namespace=pod.namespace, uid=pod.uid, attempt=pod.attempt
            ),
            hostname=pod.name,
            port_mappings=[_port_mapping(entry) for entry in port_mappings],
            labels=all_labels,
            annotations={"kubernetes.io/config.source": "api"},
            linux=cri.LinuxPodSandboxConfig(
                cgroup_parent=cgroup_parent,
                security_context=cri.LinuxSandboxSecurityContext(
                    namespace_options=cri.NamespaceOption(
                        network=cri.NamespaceMode.POD,
                        pid=cri.NamespaceMode.CONTAINER,
                        ipc=cri.NamespaceMode.POD,
                    )
                ),
            ),
        )
        request = cri.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        return self._call("RunPodSandbox", request, cri.RunPodSandboxResponse).pod_sandbox_id

    def pod_sandbox_status(self, sandbox_id: str, *, verbose: bool = True) -> SandboxStatus:
        request = cri.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        response = self._call("PodSandboxStatus", request, cri.PodSandboxStatusResponse)
        status = response.status
        return SandboxStatus(
            id=status.id,
            metadata=_metadata(status.metadata),
            state=cri.PodSandboxState.Name(status.state),
            ip=status.network.ip,
            additional_ips=tuple(extra.ip for extra in status.network.additional_ips),
            netns_path=_netns_from_info(response.info) if verbose else None,
        )

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop the sandbox; containerd runs CNI DEL. Kubelet calls this more than once for
        a pod, and containerd runs DEL again each time (with an empty netns after the first)."""
        request = cri.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call("StopPodSandbox", request, cri.StopPodSandboxResponse)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        request = cri.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call("RemovePodSandbox", request, cri.RemovePodSandboxResponse)

    def list_pod_sandbox(self, *, state: str | None = None) -> list[Sandbox]:
        request = cri.ListPodSandboxRequest()
        if state is not None:
            request.filter.state.state = cri.PodSandboxState.Value(state)
        response = self._call("ListPodSandbox", request, cri.ListPodSandboxResponse)
        return [
            Sandbox(
                id=item.id,
                metadata=_metadata(item.metadata),
                state=cri.PodSandboxState.Name(item.state),
                labels=dict(item.labels),
            )
            for item in response.items
        ]


def _port_mapping(entry: Mapping[str, Any]) -> cri.PortMapping:
    """A portMappings entry as kubelet fills CRI's PortMapping (protocol upper-case)."""
    return cri.PortMapping(
        protocol=cri.Protocol.Value(str(entry.get("protocol") or "tcp").upper()),
        container_port=int(entry["containerPort"]),
        host_port=int(entry["hostPort"]),
        host_ip=str(entry.get("hostIP", "")),
    )
