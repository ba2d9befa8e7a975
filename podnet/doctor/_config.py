"""Where doctor looks: a real node's default paths, each overridable (the lab's nodes keep
theirs under the lab's state dir)."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from podnet.agent import DEFAULT_CNI_DATA_DIR, DEFAULT_SOCKET, DEFAULT_SUBNET_FILE
from podnet.runtime import DEFAULT_BIN_DIR, DEFAULT_CONF_DIR

# Files younger than this may belong to a pod being created right now (containerd lists a
# sandbox only after its ADD): the same grace the agent's GC gives them.
DEFAULT_GRACE = 60.0


@dataclass(frozen=True)
class DoctorConfig:
    conf_dir: str = DEFAULT_CONF_DIR
    bin_dir: str = DEFAULT_BIN_DIR
    subnet_file: str = DEFAULT_SUBNET_FILE
    cni_data_dir: str = DEFAULT_CNI_DATA_DIR  # the runtime's CNI cache (results/)
    cni_socket: str = DEFAULT_SOCKET
    healthz_port: int | None = None  # the agent's health port; None: not checked
    healthz_address: str = "127.0.0.1"
    node_name: str = ""
    kubeconfig: str = ""  # read Node objects through the API with it
    pod_cidr: IPv4Network | None = None  # the node's podCIDR when no API is given
    cri_socket: str = ""  # the runtime's sandboxes, for leaked reservations
    grace: float = DEFAULT_GRACE
