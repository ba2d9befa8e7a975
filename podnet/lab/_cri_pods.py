"""Pods on a lab node whose runtime is containerd: started and stopped over CRI, as kubelet
does, and shown in the lab's terms (the runtime library's `Sandbox` record)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from podnet.cri import CRIError, PodMetadata, SandboxStatus
from podnet.lab._containerd import Containerd
from podnet.runtime import POD_IFNAME, READY, STOPPED, Sandbox


class PodError(RuntimeError):
    """A CRI call for a pod failed; the message names the node's runtime."""


def sandbox_of(status: SandboxStatus) -> Sandbox:
    return Sandbox(
        id=status.id,
        name=status.metadata.name,
        namespace=status.metadata.namespace,
        uid=status.metadata.uid,
        netns=status.netns_path or "",
        ifname=POD_IFNAME,
        state=READY if status.state == "SANDBOX_READY" else STOPPED,
        ip=status.ip,
        additional_ips=tuple(status.additional_ips),
    )


def run_pod(
    containerd: Containerd,
    name: str,
    namespace: str,
    *,
    ports: Sequence[Mapping[str, Any]] = (),
) -> Sandbox:
    """RunPodSandbox (containerd runs CNI ADD inside it, with `ports` as the portmap's
    portMappings), then the sandbox's status."""
    try:
        with containerd.client() as cri:
            sandbox_id = cri.run_pod_sandbox(
                PodMetadata(name=name, namespace=namespace, uid=str(uuid.uuid4())),
                cgroup_parent=containerd.cgroup_parent,
                port_mappings=ports,
            )
            return sandbox_of(cri.pod_sandbox_status(sandbox_id))
    except CRIError as exc:
        raise PodError(f"containerd: {exc}") from None


def list_pods(containerd: Containerd) -> list[Sandbox]:
    try:
        with containerd.client(timeout=10.0) as cri:
            statuses = [cri.pod_sandbox_status(s.id) for s in cri.list_pod_sandbox()]
    except CRIError as exc:
        raise PodError(f"containerd: {exc}") from None
    return sorted((sandbox_of(s) for s in statuses), key=lambda s: (s.namespace, s.name))


def remove_pod(containerd: Containerd, sandbox_id: str) -> None:
    """What kubelet does when a pod goes: StopPodSandbox (CNI DEL; kubelet repeats it on
    every sync until the pod is gone, so twice), then RemovePodSandbox."""
    try:
        with containerd.client() as cri:
            cri.stop_pod_sandbox(sandbox_id)
            cri.stop_pod_sandbox(sandbox_id)
            cri.remove_pod_sandbox(sandbox_id)
    except CRIError as exc:
        raise PodError(f"containerd: {exc}") from None
