"""Event objects in the Kubernetes shape (core/v1 Event), under /registry/events/NAMESPACE/.

Like client-go's event recorder, repeats are aggregated: an event with the same source,
object, type, reason and message bumps `count` and `lastTimestamp` of the existing one
instead of adding another. The object's name is derived from those fields, so two
controllers recording the same thing aggregate too (create-if-absent, else CAS).

Events expire, as in Kubernetes (the API server's --event-ttl, 1 h): they are written
under a lease, which the recorder shares between the events of a one-minute window.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from podnet.store._base import Store
from podnet.store._errors import LeaseNotFound
from podnet.store._objects import Invalid, now_rfc3339

EVENTS_PREFIX = "/registry/events/"
DEFAULT_NAMESPACE = "default"
EVENT_TTL = 3600
LEASE_REUSE_SECONDS = 60
NORMAL = "Normal"
WARNING = "Warning"
_CAS_ATTEMPTS = 10


class ObjectReferenceJSON(TypedDict):
    apiVersion: str
    kind: str
    name: str
    uid: str


class EventJSON(TypedDict):
    apiVersion: str
    kind: str
    metadata: dict[str, str]
    involvedObject: ObjectReferenceJSON
    reason: str
    message: str
    type: str
    source: dict[str, str]
    reportingComponent: str
    firstTimestamp: str
    lastTimestamp: str
    count: int


@dataclass(frozen=True)
class Event:
    name: str
    namespace: str
    type: str
    reason: str
    message: str
    object_kind: str
    object_name: str
    object_uid: str
    component: str
    first_timestamp: str
    last_timestamp: str
    count: int = 1
    resource_version: int = 0

    def to_json(self) -> EventJSON:
        metadata = {
            "name": self.name,
            "namespace": self.namespace,
            "creationTimestamp": self.first_timestamp,
        }
        if self.resource_version:
            metadata["resourceVersion"] = str(self.resource_version)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": metadata,
            "involvedObject": {
                "apiVersion": "v1",
                "kind": self.object_kind,
                "name": self.object_name,
                "uid": self.object_uid,
            },
            "reason": self.reason,
            "message": self.message,
            "type": self.type,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "firstTimestamp": self.first_timestamp,
            "lastTimestamp": self.last_timestamp,
            "count": self.count,
        }

    @classmethod
    def from_json(cls, data: Any, *, resource_version: int = 0) -> Event:
        try:
            meta, ref = data["metadata"], data["involvedObject"]
            return cls(
                name=str(meta["name"]),
                namespace=str(meta.get("namespace", DEFAULT_NAMESPACE)),
                type=str(data["type"]),
                reason=str(data["reason"]),
                message=str(data["message"]),
                object_kind=str(ref["kind"]),
                object_name=str(ref["name"]),
                object_uid=str(ref.get("uid", "")),
                component=str((data.get("source") or {}).get("component", "")),
                first_timestamp=str(data["firstTimestamp"]),
                last_timestamp=str(data["lastTimestamp"]),
                count=int(data.get("count", 1)),
                resource_version=resource_version,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid("Event", "?", [f"malformed object: {exc!r}"]) from exc


class EventRecorder:
    """Records events for one component (e.g. "cidrAllocator")."""

    def __init__(
        self,
        store: Store,
        component: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: int = EVENT_TTL,
        prefix: str = EVENTS_PREFIX,
    ) -> None:
        self.store = store
        self.component = component
        self.namespace = namespace
        self.ttl = ttl
        self.prefix = prefix
        self._lease = 0
        self._lease_since = 0.0

    def record(
        self, *, kind: str, name: str, uid: str = "", type: str, reason: str, message: str
    ) -> Event:
        """Record (or aggregate) one event about object `kind/name`."""
        digest = hashlib.sha256(
            "\0".join([self.component, kind, name, uid, type, reason, message]).encode()
        ).hexdigest()[:16]
        event_name = f"{name}.{digest}"
        key = f"{self.prefix}{self.namespace}/{event_name}"
        stamp = now_rfc3339()
        fresh = Event(
            name=event_name,
            namespace=self.namespace,
            type=type,
            reason=reason,
            message=message,
            object_kind=kind,
            object_name=name,
            object_uid=uid,
            component=self.component,
            first_timestamp=stamp,
            last_timestamp=stamp,
        )
        for _ in range(_CAS_ATTEMPTS):
            lease = self._current_lease()
            try:
                existing = self.store.get(key)
                if existing is None:
                    created = self.store.create(key, _encode(fresh), lease=lease)
                    if created is not None:
                        return _with_revision(fresh, created.mod_revision)
                    continue
                old = Event.from_json(json.loads(existing.value))
                bumped = _with_count(old, old.count + 1, stamp)
                updated = self.store.update(
                    key, _encode(bumped), revision=existing.mod_revision, lease=lease
                )
                if updated is not None:
                    return _with_revision(bumped, updated.mod_revision)
            except LeaseNotFound:
                self._lease = 0  # expired under us (a long pause): take a new one
        return fresh  # lost every race: someone else keeps recording the same event

    def _current_lease(self) -> int:
        if not self._lease or time.monotonic() - self._lease_since > LEASE_REUSE_SECONDS:
            self._lease = self.store.grant(self.ttl)
            self._lease_since = time.monotonic()
        return self._lease


def list_events(
    store: Store, *, namespace: str | None = None, prefix: str = EVENTS_PREFIX
) -> list[Event]:
    """Events (of one namespace, or all), oldest last-seen first."""
    listing = store.list(prefix + (f"{namespace}/" if namespace else ""))
    events = [
        Event.from_json(json.loads(kv.value), resource_version=kv.mod_revision)
        for kv in listing.items
    ]
    return sorted(events, key=lambda e: (e.last_timestamp, e.resource_version))


def _encode(event: Event) -> bytes:
    data: dict[str, Any] = dict(event.to_json())
    data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "resourceVersion"}
    return json.dumps(data, separators=(",", ":")).encode()


def _with_revision(event: Event, revision: int) -> Event:
    return replace(event, resource_version=revision)


def _with_count(event: Event, count: int, stamp: str) -> Event:
    return replace(event, count=count, last_timestamp=stamp)
