"""podnet.lab: several nodes on one machine, and the real runtime that drives them.

A node is a network namespace; its container runtime is a real containerd started inside
it (`Containerd`), driven over CRI v1 the way kubelet drives it (`CRIClient`), with a
locally built sandbox image (`write_sandbox_image`).
"""

from podnet.lab._containerd import Containerd, ContainerdError, missing_prerequisites
from podnet.lab._cri import (
    Condition,
    CRIClient,
    CRIError,
    PodMetadata,
    RuntimeVersion,
    Sandbox,
    SandboxStatus,
)
from podnet.lab._host import mounts_under, remove_cgroup, shim_pids
from podnet.lab._image import SANDBOX_IMAGE, ImageError, is_static_elf, write_sandbox_image

__all__ = [
    "SANDBOX_IMAGE",
    "CRIClient",
    "CRIError",
    "Condition",
    "Containerd",
    "ContainerdError",
    "ImageError",
    "PodMetadata",
    "RuntimeVersion",
    "Sandbox",
    "SandboxStatus",
    "is_static_elf",
    "missing_prerequisites",
    "mounts_under",
    "remove_cgroup",
    "shim_pids",
    "write_sandbox_image",
]
