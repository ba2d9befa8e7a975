"""Node objects in the Kubernetes shape, stored as JSON under /registry/minions/NAME (the
key the API server uses in etcd), so `podnet get node n1 -o json | jq .spec.podCIDR`
answers as `kubectl` does.

As in the API server, `metadata.resourceVersion` is not stored: it is the key's mod
revision, filled in on read, and an update is a compare-and-swap on it. The validation
rules and their wording follow the API server's (pkg/apis/core/validation): a name is an
RFC 1123 subdomain, podCIDRs are valid CIDRs, at most one per IP family, and once set
they never change ("node updates may not change podCIDR except from \"\" to valid").

A Node keeps the fields it does not model (labels, taints, conditions, nodeInfo...) in
`raw`, and writes them back: a client of the API server may set any of them, and the
agent or nodeipam updating an annotation or the podCIDR must not drop them.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NotRequired, TypedDict, cast

from podnet.store._base import EventType, KeyValue, Store, WatchEvent
from podnet.store._objects import AlreadyExists, Conflict, Invalid, NotFound, now_rfc3339

NODES_PREFIX = "/registry/minions/"
INTERNAL_IP = "InternalIP"

PODCIDR_IMMUTABLE = 'node updates may not change podCIDR except from "" to valid'
# A DNS-1123 subdomain, as the API server checks object names (its wording below).
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


# -- the wire shape --------------------------------------------------------------------
class NodeAddressJSON(TypedDict):
    type: str
    address: str


class NodeMetaJSON(TypedDict):
    name: str
    uid: str
    creationTimestamp: str
    annotations: NotRequired[dict[str, str]]
    resourceVersion: NotRequired[str]


class NodeSpecJSON(TypedDict, total=False):
    podCIDR: str
    podCIDRs: list[str]


class NodeStatusJSON(TypedDict, total=False):
    addresses: list[NodeAddressJSON]


class NodeJSON(TypedDict):
    apiVersion: str
    kind: str
    metadata: NodeMetaJSON
    spec: NodeSpecJSON
    status: NodeStatusJSON


# -- the domain object -----------------------------------------------------------------
@dataclass(frozen=True)
class NodeAddress:
    type: str
    address: str


@dataclass(frozen=True)
class Node:
    name: str
    addresses: tuple[NodeAddress, ...] = ()
    pod_cidrs: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""
    creation_timestamp: str = ""
    resource_version: int = 0
    # The object as read, for the fields above does not model (see the module docstring).
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def pod_cidr(self) -> str:
        """spec.podCIDR: the first of podCIDRs, or "" while none is assigned."""
        return self.pod_cidrs[0] if self.pod_cidrs else ""

    @property
    def internal_ip(self) -> str:
        for address in self.addresses:
            if address.type == INTERNAL_IP:
                return address.address
        return ""

    def with_pod_cidrs(self, cidrs: Sequence[str]) -> Node:
        return replace(self, pod_cidrs=tuple(cidrs))

    def with_annotations(self, annotations: Mapping[str, str]) -> Node:
        return replace(self, annotations=dict(annotations))

    def to_json(self) -> NodeJSON:
        data: dict[str, Any] = copy.deepcopy(dict(self.raw))
        meta: dict[str, Any] = data.get("metadata") or {}
        meta.update(name=self.name, uid=self.uid, creationTimestamp=self.creation_timestamp)
        meta.pop("annotations", None)
        meta.pop("resourceVersion", None)
        if self.annotations:
            meta["annotations"] = dict(sorted(self.annotations.items()))
        if self.resource_version:
            meta["resourceVersion"] = str(self.resource_version)
        spec: dict[str, Any] = data.get("spec") or {}
        spec.pop("podCIDR", None)
        spec.pop("podCIDRs", None)
        if self.pod_cidrs:
            spec.update(podCIDR=self.pod_cidrs[0], podCIDRs=list(self.pod_cidrs))
        status: dict[str, Any] = data.get("status") or {}
        status.pop("addresses", None)
        if self.addresses:
            status["addresses"] = [{"type": a.type, "address": a.address} for a in self.addresses]
        data.update(apiVersion="v1", kind="Node", metadata=meta, spec=spec, status=status)
        return cast(NodeJSON, data)

    @classmethod
    def from_json(cls, data: Any, *, resource_version: int = 0) -> Node:
        """Parse a Node object; Invalid when it does not have the Node shape."""
        name = "?"
        try:
            meta = data["metadata"]
            name = str(meta["name"])
            if data.get("kind") != "Node":
                raise Invalid("Node", name, [f"kind: Invalid value: {data.get('kind')!r}"])
            spec = data.get("spec") or {}
            cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
            addresses = (data.get("status") or {}).get("addresses") or []
            return cls(
                name=name,
                addresses=tuple(NodeAddress(str(a["type"]), str(a["address"])) for a in addresses),
                pod_cidrs=tuple(str(c) for c in cidrs),
                annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
                uid=str(meta.get("uid", "")),
                creation_timestamp=str(meta.get("creationTimestamp", "")),
                resource_version=resource_version,
                raw=data,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise Invalid("Node", name, [f"malformed object: {exc!r}"]) from exc


def validate_node(node: Node) -> None:
    """The API server's create-time checks; raises Invalid naming every problem."""
    causes = []
    if not (len(node.name) <= 253 and SUBDOMAIN.fullmatch(node.name)):
        causes.append(f'metadata.name: Invalid value: "{node.name}": {SUBDOMAIN_MESSAGE}')
    for index, address in enumerate(node.addresses):
        try:
            ipaddress.ip_address(address.address)
        except ValueError:
            causes.append(
                f'status.addresses[{index}].address: Invalid value: "{address.address}": '
                "must be a valid IP address"
            )
    families = []
    for index, cidr in enumerate(node.pod_cidrs):
        try:
            families.append(ipaddress.ip_network(cidr, strict=False).version)
        except ValueError:
            causes.append(
                f'spec.podCIDRs[{index}]: Invalid value: "{cidr}": must be a valid CIDR value, '
                "(e.g. 10.9.8.0/24 or 2001:db8::/64)"
            )
    if len(node.pod_cidrs) > 2 or (len(families) == 2 and families[0] == families[1]):
        value = "[" + ", ".join(f'"{c}"' for c in node.pod_cidrs) + "]"
        causes.append(
            f"spec.podCIDRs: Invalid value: {value}: "
            "may specify no more than one CIDR for each IP family"
        )
    if causes:
        raise Invalid("Node", node.name, causes)


def validate_node_update(new: Node, old: Node) -> None:
    """The API server's update-time checks: `new` may only add podCIDRs to a node that
    has none."""
    validate_node(new)
    if old.pod_cidrs and tuple(new.pod_cidrs) != tuple(old.pod_cidrs):
        raise Invalid("Node", new.name, [f"spec.podCIDRs: Forbidden: {PODCIDR_IMMUTABLE}"])


@dataclass(frozen=True)
class NodeChange:
    """A node watch event: `node` is None for DELETE."""

    type: EventType
    name: str
    node: Node | None
    revision: int


class Nodes:
    """Node objects on a Store."""

    resource = "nodes"

    def __init__(self, store: Store, *, prefix: str = NODES_PREFIX) -> None:
        self.store = store
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    def decode(self, kv: KeyValue) -> Node:
        try:
            data = json.loads(kv.value)
        except (ValueError, UnicodeDecodeError) as exc:
            name = kv.key.removeprefix(self.prefix)
            raise Invalid("Node", name, [f"stored value is not JSON: {exc}"]) from exc
        return Node.from_json(data, resource_version=kv.mod_revision)

    @staticmethod
    def encode(node: Node) -> bytes:
        data = node.to_json()
        data["metadata"].pop("resourceVersion", None)  # the key's revision, never stored
        return json.dumps(data, separators=(",", ":")).encode()

    def register(
        self,
        name: str,
        *,
        addresses: Sequence[str] = (),
        annotations: Mapping[str, str] | None = None,
    ) -> Node:
        """Create the Node object (as a kubelet registering); AlreadyExists if it does."""
        node = Node(
            name=name,
            addresses=tuple(NodeAddress(INTERNAL_IP, a) for a in addresses),
            annotations=dict(annotations or {}),
            uid=str(uuid.uuid4()),
            creation_timestamp=now_rfc3339(),
        )
        validate_node(node)
        created = self.store.create(self.key(name), self.encode(node))
        if created is None:
            raise AlreadyExists(self.resource, name)
        return replace(node, resource_version=created.mod_revision)

    def get(self, name: str) -> Node | None:
        kv = self.store.get(self.key(name))
        return self.decode(kv) if kv else None

    def require(self, name: str) -> Node:
        node = self.get(name)
        if node is None:
            raise NotFound(self.resource, name)
        return node

    def list(self) -> tuple[list[Node], int]:
        """Every node, sorted by name, and the revision to watch from (+1)."""
        listing = self.store.list(self.prefix)
        return [self.decode(kv) for kv in listing.items], listing.revision

    def update(self, node: Node, *, base: Node | None = None) -> Node:
        """Write `node` if nobody changed it since it was read (its resource_version);
        Conflict otherwise, Invalid if the change is not allowed, NotFound if it is gone.

        `base` is the object as the caller read it at that resource_version (e.g. from a
        watch event): the rules are checked against it and the store is not read again.
        """
        if base is None or base.resource_version != node.resource_version:
            current = self.store.get(self.key(node.name))
            if current is None:
                raise NotFound(self.resource, node.name)
            if current.mod_revision != node.resource_version:
                raise Conflict(self.resource, node.name)
            base = self.decode(current)
        validate_node_update(node, base)
        updated = self.store.update(
            self.key(node.name), self.encode(node), revision=node.resource_version
        )
        if updated is None:
            if self.store.get(self.key(node.name)) is None:
                raise NotFound(self.resource, node.name)
            raise Conflict(self.resource, node.name)
        return replace(node, resource_version=updated.mod_revision)

    def delete(self, name: str, *, resource_version: int | None = None) -> bool:
        return self.store.delete(self.key(name), revision=resource_version)

    def change(self, event: WatchEvent) -> NodeChange:
        """A store watch event under the prefix, as a node change."""
        name = event.key.removeprefix(self.prefix)
        if event.type == "DELETE":
            return NodeChange("DELETE", name, None, event.revision)
        node = self.decode(KeyValue(event.key, event.value, 0, event.revision))
        return NodeChange("PUT", name, node, event.revision)
