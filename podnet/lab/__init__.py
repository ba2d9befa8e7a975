"""podnet.lab: several nodes on one machine, and the real runtime that drives them.

`Lab` is a whole cluster (store, nodeipam, one agent per node, pods) under one state dir;
`matrix` pings between pods' `Endpoint`s.

A node is a network namespace on an underlay switch namespace (`build`, `teardown`); its
container runtime can be a real containerd started inside it (`Containerd`), driven over
CRI v1 the way kubelet drives it (`podnet.cri.CRIClient`), with a locally built sandbox image
(`write_sandbox_image`).
"""

from podnet.lab._check import Endpoint, matrix
from podnet.lab._cluster import RUNTIMES, Lab, LabPod
from podnet.lab._containerd import (
    Containerd,
    ContainerdError,
    Spawn,
    default_snapshotter,
    missing_prerequisites,
)
from podnet.lab._errors import LabError
from podnet.lab._host import mounts_under, remove_cgroup, shim_pids
from podnet.lab._image import SANDBOX_IMAGE, ImageError, is_static_elf, write_sandbox_image
from podnet.lab._restarter import run_restarter
from podnet.lab._topology import (
    FIRST_NODE_HOST,
    NODE_UNDERLAY_IF,
    SWITCH,
    UNDERLAY_NETWORK,
    LabNode,
    TopologyError,
    Underlay,
    add_node,
    build,
    create_underlay,
    lab_namespaces,
    lab_prefix,
    node_address,
    remove_node,
    teardown,
)

__all__ = [
    "RUNTIMES",
    "Endpoint",
    "Lab",
    "LabError",
    "LabPod",
    "matrix",
    "FIRST_NODE_HOST",
    "NODE_UNDERLAY_IF",
    "SANDBOX_IMAGE",
    "SWITCH",
    "UNDERLAY_NETWORK",
    "Containerd",
    "ContainerdError",
    "ImageError",
    "LabNode",
    "TopologyError",
    "Underlay",
    "Spawn",
    "add_node",
    "build",
    "create_underlay",
    "default_snapshotter",
    "is_static_elf",
    "lab_namespaces",
    "lab_prefix",
    "missing_prerequisites",
    "mounts_under",
    "node_address",
    "remove_cgroup",
    "remove_node",
    "run_restarter",
    "shim_pids",
    "teardown",
    "write_sandbox_image",
]
