"""A node's lease: its pod subnets plus what other nodes need to reach them.

As in flannel's kube subnet manager, a lease is not stored on its own: it is read from the
node object, the subnets from `spec.podCIDR(s)` and the rest from annotations the node's
agent publishes (`flannel.alpha.coreos.com/*`, same names and value formats as flannel, so
the annotations read the same in `podnet get node -o json` as in `kubectl`).

A lease has an IPv4 part (podCIDR, `public-ip`, `backend-data`), an IPv6 part (podCIDR,
`public-ipv6`, `backend-v6-data`) or both (dual-stack). flanneld reads only the parts its
own config enables and rejects a node that lacks one; podnet reads every part a node
publishes, and each backend uses the families it carries, so a node of another stack
never makes the whole lease unusable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import Any

from podnet.cni import is_int

ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
KUBE_SUBNET_MANAGER = ANNOTATION_PREFIX + "kube-subnet-manager"
BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"
BACKEND_TYPE = ANNOTATION_PREFIX + "backend-type"
PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"
BACKEND_V6_DATA = ANNOTATION_PREFIX + "backend-v6-data"
PUBLIC_IPV6 = ANNOTATION_PREFIX + "public-ipv6"

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
    subnet: IPv4Network | None  # None: the node has no IPv4 part
    public_ip: IPv4Address | None
    backend_type: str
    backend_data: VxlanData | None = None
    ipv6_subnet: IPv6Network | None = None  # None: the node has no IPv6 part
    public_ipv6: IPv6Address | None = None
    backend_v6_data: VxlanData | None = None

    @property
    def key(self) -> IPv4Network | IPv6Network:
        """What identifies the lease among the cluster's: its IPv4 subnet, else its IPv6 one
        (flannel keys its leases by subnet too)."""
        key = self.subnet or self.ipv6_subnet
        assert key is not None  # lease_from_node makes no lease without a subnet
        return key

    def annotations(self) -> dict[str, str]:
        """The annotations a node's agent publishes for this lease, as flanneld's kube
        subnet manager writes them: the vxlan backend publishes a family's data and public
        IP only when it has that family's device; host-gw always writes `backend-data`
        and `public-ip` (null and 0.0.0.0 on an IPv6-only node, as flanneld's zero values)."""
        published = {KUBE_SUBNET_MANAGER: "true", BACKEND_TYPE: self.backend_type}
        if self.backend_data is not None or self.backend_type != "vxlan":
            published[BACKEND_DATA] = _data_json(self.backend_data)
            published[PUBLIC_IP] = str(self.public_ip or IPv4Address(0))
        if self.public_ipv6 is not None and (
            self.backend_v6_data is not None or self.backend_type != "vxlan"
        ):
            published[BACKEND_V6_DATA] = _data_json(self.backend_v6_data)
            published[PUBLIC_IPV6] = str(self.public_ipv6)
        return published


def _data_json(data: VxlanData | None) -> str:
    return "null" if data is None else data.to_json()


def pod_cidrs_by_family(
    pod_cidr: str | None, pod_cidrs: Sequence[str] = ()
) -> tuple[IPv4Network | None, IPv6Network | None]:
    """A node's IPv4 and IPv6 podCIDR (`spec.podCIDRs` first, then `spec.podCIDR`), as
    flannel's nodeToLease picks them: the first of each family; unparsable ones are skipped."""
    v4: IPv4Network | None = None
    v6: IPv6Network | None = None
    for text in list(pod_cidrs) or ([pod_cidr] if pod_cidr else []):
        try:
            network = ip_network(text)
        except ValueError:
            continue
        if isinstance(network, IPv4Network):
            v4 = v4 or network
        else:
            v6 = v6 or network
    return v4, v6


def ipv4_pod_cidr(pod_cidr: str | None, pod_cidrs: Sequence[str] = ()) -> IPv4Network | None:
    """The IPv4 podCIDR of a node (`spec.podCIDRs` first, then `spec.podCIDR`)."""
    return pod_cidrs_by_family(pod_cidr, pod_cidrs)[0]


def lease_from_node(
    name: str,
    *,
    pod_cidr: str | None,
    pod_cidrs: Sequence[str] = (),
    annotations: Mapping[str, str],
) -> Lease | None:
    """The lease a node object describes; None while its agent has not published one yet
    (no podCIDR of a published family, or no `kube-subnet-manager: "true"`, as flannel's
    node filter). Raises LeaseError for annotations that are present but malformed."""
    subnet, ipv6_subnet = pod_cidrs_by_family(pod_cidr, pod_cidrs)
    if annotations.get(KUBE_SUBNET_MANAGER) != "true":
        return None
    backend_type = annotations.get(BACKEND_TYPE, "")
    public_ip = _address(name, annotations, PUBLIC_IP, IPv4Address)
    public_ipv6 = _address(name, annotations, PUBLIC_IPV6, IPv6Address)
    if subnet is None or public_ip is None or public_ip == IPv4Address(0):
        subnet = public_ip = None
    if ipv6_subnet is None or public_ipv6 is None:
        ipv6_subnet = public_ipv6 = None
    if subnet is None and ipv6_subnet is None:
        return None
    data = v6_data = None
    if backend_type == "vxlan":
        if subnet is not None:
            data = VxlanData.from_json(annotations.get(BACKEND_DATA, ""))
        if ipv6_subnet is not None:
            v6_data = VxlanData.from_json(annotations.get(BACKEND_V6_DATA, ""))
    return Lease(
        node=name,
        subnet=subnet,
        public_ip=public_ip,
        backend_type=backend_type,
        backend_data=data,
        ipv6_subnet=ipv6_subnet,
        public_ipv6=public_ipv6,
        backend_v6_data=v6_data,
    )


def _address(
    name: str,
    annotations: Mapping[str, str],
    key: str,
    kind: type[IPv4Address] | type[IPv6Address],
) -> Any:
    """The address annotation `key`; None when absent; LeaseError when malformed."""
    text = annotations.get(key)
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        short = key.removeprefix(ANNOTATION_PREFIX)
        raise LeaseError(f"node {name}: {short} {text!r}") from None
