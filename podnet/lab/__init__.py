"""podnet.lab: several nodes on one machine, and the real runtime that drives them.

`Lab` is a whole cluster (store, nodeipam, one agent per node, pods) under one state dir;
`matrix` pings between pods' `Endpoint`s.

A node is a network namespace on an underlay switch namespace (`build`, `teardown`); its
container runtime can be a real containerd started inside it (`Containerd`), driven over
CRI v1 the way kubelet drives it (`podnet.cri.CRIClient`), with a locally built sandbox image
(`write_sandbox_image`).
"""

from podnet.lab._check import Endpoint, endpoints_of, matrix, ping
from podnet.lab._cluster import LAB_ROOT, RUNTIMES, Lab, LabPod
from podnet.lab._containerd import Containerd, default_snapshotter, missing_prerequisites
from podnet.lab._driver import SandboxDriver
from podnet.lab._errors import LabError
from podnet.lab._graph import FORMATS as GRAPH_FORMATS
from podnet.lab._graph import GraphError, Picture, render, take_picture
from podnet.lab._host import mounts_under, shim_pids
from podnet.lab._image import (
    DEFAULT_BUSYBOX,
    SANDBOX_IMAGE,
    ImageError,
    is_static_elf,
    write_sandbox_image,
)
from podnet.lab._lifecycle import GRACE_SECONDS as NODE_MONITOR_GRACE_SECONDS
from podnet.lab._lifecycle import NodeLifecycle
from podnet.lab._node_runtime import PodnetNodes
from podnet.lab._restarter import RESTARTER, run_restarter
from podnet.lab._scheduler import Scheduler
from podnet.lab._topology import (
    NODE_SECOND_UNDERLAY_IF,
    NODE_UNDERLAY_IF,
    SECOND_UNDERLAY_NETWORK,
    LabNode,
    TopologyError,
    Underlay,
    add_node,
    build,
    lab_namespaces,
    node_address,
    remove_node,
    second_underlay_address,
    teardown,
)

__all__ = [
    "GRAPH_FORMATS",
    "GraphError",
    "Picture",
    "render",
    "take_picture",
    "DEFAULT_BUSYBOX",
    "LAB_ROOT",
    "SandboxDriver",
    "NodeLifecycle",
    "NODE_MONITOR_GRACE_SECONDS",
    "Scheduler",
    "NODE_UNDERLAY_IF",
    "NODE_SECOND_UNDERLAY_IF",
    "SECOND_UNDERLAY_NETWORK",
    "second_underlay_address",
    "RESTARTER",
    "PodnetNodes",
    "ping",
    "RUNTIMES",
    "Endpoint",
    "endpoints_of",
    "Lab",
    "LabError",
    "LabPod",
    "matrix",
    "SANDBOX_IMAGE",
    "Containerd",
    "ImageError",
    "LabNode",
    "TopologyError",
    "Underlay",
    "add_node",
    "build",
    "default_snapshotter",
    "is_static_elf",
    "lab_namespaces",
    "missing_prerequisites",
    "mounts_under",
    "node_address",
    "remove_node",
    "run_restarter",
    "shim_pids",
    "teardown",
    "write_sandbox_image",
]
