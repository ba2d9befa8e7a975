"""podnet.cri: the kubelet side of CRI v1, the calls kubelet makes to a container runtime
for a pod's network (version, status, run/stop/remove/list pod sandboxes).

The lab drives containerd with it the way kubelet does, and the agent asks the runtime
which sandboxes exist so that it can garbage-collect what no sandbox uses any more. It
depends on grpc and the CRI stubs only.
"""

from podnet.cri._client import CRIClient, CRIError, PodMetadata, RuntimeVersion, SandboxStatus

__all__ = [
    "CRIClient",
    "CRIError",
    "PodMetadata",
    "RuntimeVersion",
    "SandboxStatus",
]
