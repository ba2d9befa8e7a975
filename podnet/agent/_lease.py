"""A node's lease: its pod subnet plus what other nodes need to reach it.

As in flannel's kube subnet manager, a lease is not stored on its own: it is read from the
node object, the subnet from `spec.podCIDR(s)` and the rest from annotations the node's
agent publishes (`flannel.alpha.coreos.com/*`, same names and value formats as flannel, so
the annotations read the same in `podnet get node -o json` as in `kubectl`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from podnet.cni import is_int

ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
KUBE_SUBNET_MANAGER = ANNOTATION_PREFIX + "kube-subnet-manager"
BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"
BACKEND_TYPE = ANNOTATION_PREFIX + "backend-type"
PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class LeaseError(ValueError):
    """A node's spec or annotations do not make a usable lease."""


@dataclass(frozen=True)
class VxlanData:
    """flannel's vxlan BackendData: `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}`."""

    vni: int
    vtep_mac: str

    def to_json(self) -> str:
        # Go's encoding/json output for flannel's struct: field order, no spaces.
        return json.dumps({"VNI": self.vni, "VtepMAC": self.vtep_mac}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> VxlanData:
        try:
            data = json.loads(text)
            vni, mac = data["VNI"], data["VtepMAC"].lower()
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise LeaseError(f"vxlan backend data {text!r} is not valid: {exc}") from None
        if not is_int(vni) or not _MAC.match(mac):
            raise LeaseError(f"vxlan backend data {text!r} is not valid")
        return cls(vni=vni, vtep_mac=mac)


@dataclass(frozen=True)
class Lease:
    node: str
    subnet: IPv4Network
    public_ip: IPv4Address
    backend_type: str
    backend_data: VxlanData | None = None

    def annotations(self) -> dict[str, str]:
        """The annotations a node's agent publishes for this lease (flannel's formats)."""
        data = "null" if self.backend_data is None else self.backend_data.to_json()
        return {
            KUBE_SUBNET_MANAGER: "true",
            BACKEND_TYPE: self.backend_type,
            BACKEND_DATA: data,
            PUBLIC_IP: str(self.public_ip),
        }


def ipv4_pod_cidr(pod_cidr: str | None, pod_cidrs: Sequence[str] = ()) -> IPv4Network | None:
    """The IPv4 podCIDR of a node (`spec.podCIDRs` first, then `spec.podCIDR`)."""
    for text in list(pod_cidrs) or ([pod_cidr] if pod_cidr else []):
        try:
            network = IPv4Network(text)
        except ValueError:
            continue
        return network
    return None


def lease_from_node(
    name: str,
    *,
    pod_cidr: str | None,
    pod_cidrs: Sequence[str] = (),
    annotations: Mapping[str, str],
) -> Lease | None:
    """The lease a node object describes; None while its agent has not published one yet
    (no podCIDR, or no `kube-subnet-manager: "true"`, as flannel's node filter). Raises
    LeaseError for annotations that are present but malformed."""
    subnet = ipv4_pod_cidr(pod_cidr, pod_cidrs)
    if subnet is None or annotations.get(KUBE_SUBNET_MANAGER) != "true":
        return None
    backend_type = annotations.get(BACKEND_TYPE, "")
    try:
        public_ip = IPv4Address(annotations.get(PUBLIC_IP, ""))
    except ValueError:
        raise LeaseError(f"node {name}: public-ip {annotations.get(PUBLIC_IP)!r}") from None
    data: VxlanData | None = None
    if backend_type == "vxlan":
        data = VxlanData.from_json(annotations.get(BACKEND_DATA, ""))
    return Lease(
        node=name,
        subnet=subnet,
        public_ip=public_ip,
        backend_type=backend_type,
        backend_data=data,
    )
