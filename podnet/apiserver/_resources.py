"""The resources podnet serves, declared once: their names, kinds, where they live in
the store, which fields a fieldSelector may name, how they are validated, and the
columns `kubectl get` shows (as the API server's Table printers do).

Store layout is kube-apiserver's: `/registry/<resource>/<namespace>/<name>` for namespaced
kinds, `/registry/<resource>/<name>` for cluster-scoped ones, and Nodes under
`/registry/minions/` (podnet.store.NODES_PREFIX), where the agent and nodeipam read them.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podnet.apiserver._selectors import FieldGetter
from podnet.store import (
    EVENTS_PREFIX,
    NODES_PREFIX,
    SUBDOMAIN,
    SUBDOMAIN_MESSAGE,
    Node,
    parse_rfc3339,
    validate_node,
)
from podnet.store import Invalid as StoreInvalid
from podnet.store import validate_node_update as store_validate_node_update

Object = dict[str, Any]
Cause = tuple[str, str]
Validator = Callable[[Object, Object | None], list[Cause]]

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def dig(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _text(path: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> str:
        value = dig(obj, path)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return get


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    render: Callable[[Object], Any]
    type: str = "string"
    format: str = ""
    priority: int = 0  # 1: only with -o wide


@dataclass(frozen=True)
class Resource:
    name: str  # plural, as in URLs
    singular: str
    kind: str
    namespaced: bool
    prefix: str  # store prefix; namespaced kinds add "<namespace>/"
    group: str = ""
    version: str = "v1"
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    name_is_label: bool = False  # namespaces: an RFC 1123 label, not a subdomain
    fields: Mapping[str, FieldGetter] = field(default_factory=dict)
    validate: Validator | None = None
    columns: tuple[Column, ...] = ()
    # Objects expire from the store after this many seconds (events, as --event-ttl).
    ttl: int = 0

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def key(self, namespace: str, name: str) -> str:
        return f"{self.prefix}{namespace}/{name}" if self.namespaced else self.prefix + name

    def list_prefix(self, namespace: str | None) -> str:
        return f"{self.prefix}{namespace}/" if self.namespaced and namespace else self.prefix

    def selectable(self) -> dict[str, FieldGetter]:
        common = {"metadata.name": _text("metadata.name")}
        if self.namespaced:
            common["metadata.namespace"] = _text("metadata.namespace")
        return {**common, **self.fields}


# -- validation ------------------------------------------------------------------------
def validate_name(resource: Resource, name: str) -> list[Cause]:
    if not name:
        return [("metadata.name", "Required value: name or generateName is required")]
    pattern, message, limit = (
        (_LABEL, _LABEL_MESSAGE, 63)
        if resource.name_is_label
        else (SUBDOMAIN, SUBDOMAIN_MESSAGE, 253)
    )
    if resource.kind == "Event":
        return []  # event names are "<object>.<hash>" and are not checked further
    if len(name) > limit or not pattern.fullmatch(name):
        return [("metadata.name", f'Invalid value: "{name}": {message}')]
    return []


def _store_causes(exc: StoreInvalid) -> list[Cause]:
    causes = []
    for cause in exc.causes:
        path, _, detail = cause.partition(": ")
        causes.append((path, detail))
    return causes


def _validate_node(new: Object, old: Object | None) -> list[Cause]:
    try:
        node = Node.from_json(new)
        if old is None:
            validate_node(node)
        else:
            store_validate_node_update(node, Node.from_json(old))
    except StoreInvalid as exc:
        return [c for c in _store_causes(exc) if not c[0].startswith("metadata.name")]
    return []


def _validate_pod(new: Object, old: Object | None) -> list[Cause]:
    causes: list[Cause] = []
    containers = dig(new, "spec.containers")
    if not isinstance(containers, list) or not containers:
        causes.append(("spec.containers", "Required value"))
    else:
        for index, container in enumerate(containers):
            if not isinstance(container, Mapping) or not container.get("name"):
                causes.append((f"spec.containers[{index}].name", "Required value"))
            elif not container.get("image"):
                causes.append((f"spec.containers[{index}].image", "Required value"))
    if old is not None:
        old_node, new_node = dig(old, "spec.nodeName") or "", dig(new, "spec.nodeName") or ""
        if old_node and new_node != old_node:
            causes.append(
                ("spec.nodeName", "Forbidden: pod updates may not change spec.nodeName once set")
            )
    for path in ("status.podIP", "status.hostIP"):
        value = dig(new, path)
        if value:
            try:
                ipaddress.ip_address(str(value))
            except ValueError:
                causes.append((path, f'Invalid value: "{value}": must be a valid IP address'))
    return causes


def _validate_configmap(new: Object, old: Object | None) -> list[Cause]:
    data = new.get("data")
    if data is None:
        return []
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        return [("data", "Invalid value: a ConfigMap's data maps keys to strings")]
    return []


def _validate_event(new: Object, old: Object | None) -> list[Cause]:
    if not isinstance(new.get("involvedObject"), Mapping):
        return [("involvedObject", "Required value")]
    return []


# -- table columns ---------------------------------------------------------------------
def _parse_time(stamp: str) -> float:
    """metav1.Time as Kubernetes writes it, or any RFC 3339 form a client sent (Python
    clients write "+00:00" and fractions)."""
    when = parse_rfc3339(stamp)
    if when:
        return when
    try:
        return datetime.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def human_age(stamp: str, now: float | None = None) -> str:
    """A duration as kubectl prints it: 45s, 12m, 5h, 3d."""
    when = _parse_time(stamp) if stamp else 0.0
    if not when:
        return "<unknown>"
    seconds = int((time.time() if now is None else now) - when)
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600 * 3:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes}m" if minutes >= 10 else f"{minutes}m{rest}s"
    if seconds < 3600 * 48:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _age(obj: Object) -> str:
    return human_age(str(dig(obj, "metadata.creationTimestamp") or ""))


def _name(obj: Object) -> str:
    return str(dig(obj, "metadata.name") or "")


def _node_status(obj: Object) -> str:
    for condition in dig(obj, "status.conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            # As kubectl's printer: NotReady for False and Unknown alike (the node
            # lifecycle controller's mark); Unknown only for a node without the condition.
            state = "Ready" if condition.get("status") == "True" else "NotReady"
            break
    else:
        state = "Unknown"
    return state + (",SchedulingDisabled" if dig(obj, "spec.unschedulable") else "")


def _node_roles(obj: Object) -> str:
    roles = sorted(
        key.split("/", 1)[1]
        for key in (dig(obj, "metadata.labels") or {})
        if key.startswith("node-role.kubernetes.io/")
    )
    return ",".join(roles) or "<none>"


def _node_address(kind: str) -> Callable[[Object], str]:
    def render(obj: Object) -> str:
        for address in dig(obj, "status.addresses") or []:
            if isinstance(address, Mapping) and address.get("type") == kind:
                return str(address.get("address", ""))
        return "<none>"

    return render


def _node_info(key: str) -> Callable[[Object], str]:
    return lambda obj: str(dig(obj, f"status.nodeInfo.{key}") or "<unknown>")


def _pod_ready(obj: Object) -> str:
    containers = dig(obj, "spec.containers") or []
    ready = sum(
        1
        for s in dig(obj, "status.containerStatuses") or []
        if isinstance(s, Mapping) and s.get("ready")
    )
    return f"{ready}/{len(containers)}"


def _pod_restarts(obj: Object) -> int:
    return sum(
        int(s.get("restartCount", 0))
        for s in dig(obj, "status.containerStatuses") or []
        if isinstance(s, Mapping)
    )


def _pod_status(obj: Object) -> str:
    if dig(obj, "metadata.deletionTimestamp"):
        return "Terminating"
    return str(dig(obj, "status.reason") or dig(obj, "status.phase") or "Pending")


def _or_none(path: str) -> Callable[[Object], str]:
    return lambda obj: str(dig(obj, path) or "<none>")


def _event_last_seen(obj: Object) -> str:
    stamp = (
        dig(obj, "lastTimestamp") or dig(obj, "eventTime") or dig(obj, "metadata.creationTimestamp")
    )
    return human_age(str(stamp or ""))


def _event_object(obj: Object) -> str:
    return f"{str(dig(obj, 'involvedObject.kind') or '').lower()}/{dig(obj, 'involvedObject.name')}"


NAME_COLUMN = Column("Name", "Name must be unique within a namespace.", _name, format="name")
AGE_COLUMN = Column("Age", "CreationTimestamp is a timestamp of when the object was created.", _age)

NODES = Resource(
    name="nodes",
    singular="node",
    kind="Node",
    namespaced=False,
    prefix=NODES_PREFIX,
    short_names=("no",),
    has_status=True,
    fields={"spec.unschedulable": _text("spec.unschedulable")},
    validate=_validate_node,
    columns=(
        NAME_COLUMN,
        Column("Status", "The status of the node", _node_status),
        Column("Roles", "The roles of the node", _node_roles),
        AGE_COLUMN,
        Column("Version", "Kubelet Version reported by the node.", _node_info("kubeletVersion")),
        Column("Internal-IP", "List of internal IPs.", _node_address("InternalIP"), priority=1),
        Column("External-IP", "List of external IPs.", _node_address("ExternalIP"), priority=1),
        Column("OS-Image", "OS image reported by the node.", _node_info("osImage"), priority=1),
        Column(
            "Kernel-Version",
            "Kernel version reported by the node.",
            _node_info("kernelVersion"),
            priority=1,
        ),
        Column(
            "Container-Runtime",
            "Container runtime and version reported by the node.",
            _node_info("containerRuntimeVersion"),
            priority=1,
        ),
    ),
)

PODS = Resource(
    name="pods",
    singular="pod",
    kind="Pod",
    namespaced=True,
    prefix="/registry/pods/",
    short_names=("po",),
    has_status=True,
    fields={
        "spec.nodeName": _text("spec.nodeName"),
        "spec.restartPolicy": _text("spec.restartPolicy"),
        "spec.schedulerName": _text("spec.schedulerName"),
        "spec.serviceAccountName": _text("spec.serviceAccountName"),
        "spec.hostNetwork": _text("spec.hostNetwork"),
        "status.phase": _text("status.phase"),
        "status.podIP": _text("status.podIP"),
        "status.nominatedNodeName": _text("status.nominatedNodeName"),
    },
    validate=_validate_pod,
    columns=(
        NAME_COLUMN,
        Column(
            "Ready", "The aggregate readiness state of this pod for accepting traffic.", _pod_ready
        ),
        Column("Status", "The aggregate status of the containers in this pod.", _pod_status),
        Column(
            "Restarts",
            "The number of times the containers in this pod have been restarted.",
            _pod_restarts,
            type="string",
        ),
        AGE_COLUMN,
        Column("IP", "IP address allocated to the pod.", _or_none("status.podIP"), priority=1),
        Column(
            "Node",
            "Name of the Node that this pod is scheduled on.",
            _or_none("spec.nodeName"),
            priority=1,
        ),
        Column(
            "Nominated Node",
            "Name of the node the pod is nominated for.",
            _or_none("status.nominatedNodeName"),
            priority=1,
        ),
        Column("Readiness Gates", "Pod readiness gates.", lambda _obj: "<none>", priority=1),
    ),
)

EVENTS = Resource(
    name="events",
    singular="event",
    kind="Event",
    namespaced=True,
    prefix=EVENTS_PREFIX,
    short_names=("ev",),
    fields={
        "involvedObject.kind": _text("involvedObject.kind"),
        "involvedObject.namespace": _text("involvedObject.namespace"),
        "involvedObject.name": _text("involvedObject.name"),
        "involvedObject.uid": _text("involvedObject.uid"),
        "involvedObject.apiVersion": _text("involvedObject.apiVersion"),
        "involvedObject.resourceVersion": _text("involvedObject.resourceVersion"),
        "involvedObject.fieldPath": _text("involvedObject.fieldPath"),
        "reason": _text("reason"),
        "reportingComponent": _text("reportingComponent"),
        "source": _text("source.component"),
        "type": _text("type"),
    },
    validate=_validate_event,
    ttl=3600,
    columns=(
        Column("Last Seen", "Time since the event was last seen.", _event_last_seen),
        Column("Type", "Normal or Warning.", _text("type")),
        Column("Reason", "Why the event happened.", _text("reason")),
        Column("Object", "The object the event is about.", _event_object),
        Column("Message", "A human-readable description.", _text("message")),
        Column("Name", "The event's name.", _name, format="name", priority=1),
    ),
)

NAMESPACES = Resource(
    name="namespaces",
    singular="namespace",
    kind="Namespace",
    namespaced=False,
    prefix="/registry/namespaces/",
    short_names=("ns",),
    has_status=True,
    name_is_label=True,
    fields={"status.phase": _text("status.phase")},
    columns=(
        NAME_COLUMN,
        Column("Status", "The status of the namespace", _text("status.phase")),
        AGE_COLUMN,
    ),
)

CONFIGMAPS = Resource(
    name="configmaps",
    singular="configmap",
    kind="ConfigMap",
    namespaced=True,
    prefix="/registry/configmaps/",
    short_names=("cm",),
    validate=_validate_configmap,
    columns=(
        NAME_COLUMN,
        Column(
            "Data",
            "Number of keys.",
            lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            type="integer",
        ),
        AGE_COLUMN,
    ),
)

LEASES = Resource(
    name="leases",
    singular="lease",
    kind="Lease",
    namespaced=True,
    prefix="/registry/leases/",
    group="coordination.k8s.io",
    columns=(
        NAME_COLUMN,
        Column("Holder", "The holder of the lease.", _text("spec.holderIdentity")),
        AGE_COLUMN,
    ),
)

RESOURCES: tuple[Resource, ...] = (NODES, PODS, EVENTS, NAMESPACES, CONFIGMAPS, LEASES)
# Namespaces the API server makes at start, as kube-apiserver does.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def find(group: str, version: str, name: str) -> Resource | None:
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.name) == (group, version, name):
            return resource
    return None


def by_key(key: str) -> Resource | None:
    """The resource a store key belongs to."""
    for resource in RESOURCES:
        if key.startswith(resource.prefix):
            return resource
    return None


def location(resource: Resource, key: str) -> tuple[str, str]:
    """(namespace, name) of a key under the resource's prefix."""
    rest = key[len(resource.prefix) :]
    if resource.namespaced:
        namespace, _, name = rest.partition("/")
        return namespace, name
    return "", rest
