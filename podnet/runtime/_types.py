"""What one attachment of a container to a network is, as libcni's RuntimeConf."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RuntimeConf:
    """The per-invocation arguments of a chain, apart from the network config.

    `capability_args` reach a plugin only under the capabilities it declares (as its
    `runtimeConfig`); `args` become CNI_ARGS. Treat the mapping as read-only.
    """

    container_id: str
    netns: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cni_args(self) -> str:
        """CNI_ARGS: 'K1=V1;K2=V2'."""
        return ";".join(f"{k}={v}" for k, v in self.args)


@dataclass(frozen=True)
class GCAttachment:
    """One attachment the runtime still uses; GC must keep it."""

    container_id: str
    ifname: str

    def to_json(self) -> dict[str, str]:
        return {"containerID": self.container_id, "ifname": self.ifname}


def pod_args(
    *, namespace: str, name: str, infra_container_id: str, uid: str
) -> tuple[tuple[str, str], ...]:
    """The CNI_ARGS containerd's CRI plugin passes for a pod sandbox."""
    return (
        ("IgnoreUnknown", "1"),
        ("K8S_POD_NAMESPACE", namespace),
        ("K8S_POD_NAME", name),
        ("K8S_POD_INFRA_CONTAINER_ID", infra_container_id),
        ("K8S_POD_UID", uid),
    )


def as_args(pairs: Sequence[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in pairs)
