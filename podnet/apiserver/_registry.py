"""Objects of every served resource on the store: get, list, create, update, patch and
delete with the API server's semantics.

- `metadata.resourceVersion` is the key's mod revision, filled in on read and never
  stored; an update is a compare-and-swap on it. A client that sends a resourceVersion
  gets 409 Conflict when the object has moved on; one that sends none (and a PATCH,
  which is computed against the current object) is retried on a lost race instead.
- The `status` subresource changes only status; the main resource keeps status as it is
  (kube-apiserver's PrepareForUpdate for pods and nodes).
- uid and creationTimestamp are set on create and cannot be changed.
- Namespaced objects need their namespace to exist (NamespaceLifecycle admission).
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from podnet.apiserver._patch import apply_patch
from podnet.apiserver._resources import (
    NAMESPACES,
    PODS,
    SYSTEM_NAMESPACES,
    Object,
    Resource,
    validate_name,
)
from podnet.apiserver._selectors import FieldSelector, LabelSelector
from podnet.apiserver._status import (
    BadRequest,
    Conflict,
    NotFound,
    already_exists,
    conflict,
    invalid,
    not_found,
)
from podnet.store import NO_LEASE, KeyValue, Listing, Store, now_rfc3339

_RETRIES = 20
# An admission check of the object as it is stored (NodeRestriction's look at the pod a
# node writes), run by the write on the object it reads anyway; raises to refuse.
Admission = Callable[[Object], None]
# A new lease for events is granted once a minute and shared by that minute's events, as
# podnet.store's EventRecorder does (one store write per minute instead of per event).
_LEASE_REUSE_SECONDS = 60


def decode(kv: KeyValue) -> Object:
    return decode_value(kv.value, kv.mod_revision)


def decode_value(value: bytes, revision: int) -> Object:
    """A stored object with its resourceVersion (the revision) filled in."""
    obj: Object = json.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj


_METADATA = b'"metadata":{'
_VERSION_KEY = b'"resourceVersion"'


def with_version(value: bytes, revision: int) -> bytes | None:
    """The stored JSON with metadata.resourceVersion spliced in, without parsing it: a
    5,000-node list is then a join of bytes instead of 5,000 json.loads and one big
    json.dumps. None when the splice is not certainly right (the top-level metadata is
    not the first object inside the value, or a resourceVersion is stored already):
    decode those."""
    start = value.find(_METADATA)
    if start < 0 or value.find(b"{", 1) != start + len(_METADATA) - 1 or _VERSION_KEY in value:
        return None
    end = start + len(_METADATA)
    separator = b"" if value[end : end + 1] == b"}" else b","
    return b'%s"resourceVersion":"%d"%s%s' % (value[:end], revision, separator, value[end:])


def encode(obj: Object) -> bytes:
    stored = dict(obj)
    stored["metadata"] = {
        k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"
    }
    return json.dumps(stored, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Page:
    items: list[Object]
    revision: int
    continue_token: str
    remaining: int | None
    # The items as JSON, when the list was read without decoding them (see with_version).
    raw: list[bytes] | None = None


@dataclass(frozen=True)
class Selection:
    labels: LabelSelector
    fields: FieldSelector

    @property
    def empty(self) -> bool:
        return self.labels.empty and not self.fields.requirements

    def matches(self, resource: Resource, obj: Object) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return self.labels.matches(labels) and self.fields.matches(obj, resource.selectable())


class Registry:
    def __init__(self, store: Store, *, clock: Callable[[], float] | None = None) -> None:
        self.store = store
        self._event_lease = NO_LEASE
        self._event_lease_since = 0.0
        self._clock = clock or time.time

    def ensure_system_namespaces(self) -> None:
        for name in SYSTEM_NAMESPACES:
            if self.store.get(NAMESPACES.key("", name)) is None:
                self.store.create(
                    NAMESPACES.key("", name),
                    encode(self._fresh(NAMESPACES, "", {"metadata": {"name": name}})),
                )

    # -- reads -------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str, name: str) -> Object:
        kv = self.store.get(resource.key(namespace, name))
        if kv is None:
            raise not_found(resource.name, name, resource.group)
        return decode(kv)

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        selection: Selection,
        *,
        limit: int = 0,
        continue_token: str = "",
        raw: bool = False,
        listing: Listing | None = None,
    ) -> Page:
        """One page of the objects under the resource (in `namespace`, or all), matching
        `selection`. With `raw`, a plain full list may come back as JSON bytes (Page.raw).
        `listing` is what to page through instead of a fresh store read (the watch cache's
        snapshot, for resourceVersion=0)."""
        prefix = resource.list_prefix(namespace)
        start_after = _parse_continue(continue_token, prefix) if continue_token else ""
        if listing is None:
            listing = self.store.list(prefix)
        if raw and selection.empty and not limit and not start_after:
            spliced = [with_version(kv.value, kv.mod_revision) for kv in listing.items]
            if all(value is not None for value in spliced):
                return Page([], listing.revision, "", None, raw=cast(list[bytes], spliced))
        items: list[Object] = []
        last_key = ""
        remaining = 0
        for kv in listing.items:
            if start_after and kv.key <= start_after:
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            obj = decode(kv)
            if selection.matches(resource, obj):
                items.append(obj)
                last_key = kv.key
        token = ""
        if limit and remaining:
            token = _continue_token(listing.revision, last_key)
        # remainingItemCount is only known without a selector (the API server's rule too).
        exact = selection.labels.empty and not selection.fields.requirements
        return Page(items, listing.revision, token, remaining if token and exact else None)

    # -- writes ------------------------------------------------------------------------
    def create(
        self, resource: Resource, namespace: str, body: Object, *, dry_run: bool = False
    ) -> Object:
        body = _checked_body(resource, body)
        meta = body.setdefault("metadata", {})
        if resource.namespaced:
            body_namespace = meta.get("namespace") or namespace
            if body_namespace != namespace:
                raise BadRequest(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            self._require_namespace(namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        obj = self._fresh(resource, namespace, body)
        name = obj["metadata"]["name"]
        self._validate(resource, obj, None)
        if dry_run:  # everything but the write: the answer is what would be stored
            if self.store.get(resource.key(namespace, name)) is not None:
                raise already_exists(resource.name, name, resource.group)
            return obj
        lease = self._lease_for(resource)
        created = self.store.create(resource.key(namespace, name), encode(obj), lease=lease)
        if created is None:
            raise already_exists(resource.name, name, resource.group)
        obj["metadata"]["resourceVersion"] = str(created.mod_revision)
        return obj

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: Object,
        *,
        subresource: str = "",
        dry_run: bool = False,
        admission: Admission | None = None,
    ) -> Object:
        body = _checked_body(resource, body)
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name:
            raise BadRequest(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                f"({name})"
            )
        if resource.namespaced and meta.get("namespace", namespace) != namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        wanted = str(meta.get("resourceVersion") or "")
        return self._write(
            resource, namespace, name, lambda _current: body, wanted, subresource, dry_run,
            admission,
        )  # fmt: skip

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        content_type: str,
        patch: bytes,
        *,
        subresource: str = "",
        dry_run: bool = False,
        check: Callable[[Object], None] | None = None,
        admission: Admission | None = None,
    ) -> Object:
        """`check` sees the patched object before it is stored (fieldValidation)."""

        def patched(current: Object) -> Object:
            result = apply_patch(content_type, current, patch)
            if check is not None:
                check(result)
            return result

        return self._write(
            resource, namespace, name, patched, None, subresource, dry_run, admission
        )

    def bind(self, namespace: str, name: str, body: Any) -> Object:
        """pods/binding: a scheduler assigns the pod to a node (kube-apiserver's
        BindingREST): spec.nodeName set once, condition PodScheduled True."""
        binding = _checked_binding(name, body)
        node = binding["target"]["name"]
        uid = str((binding.get("metadata") or {}).get("uid") or "")
        wanted = str((binding.get("metadata") or {}).get("resourceVersion") or "") or None

        def assign(pod: Object) -> Object:
            if uid and uid != pod["metadata"].get("uid"):
                raise Conflict(
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {pod['metadata'].get('uid')}",
                    details={"name": name, "kind": "pods/binding"},
                )
            if pod["metadata"].get("deletionTimestamp"):
                raise _binding_conflict(
                    name, f"pod {name} is being deleted, cannot be assigned to a host"
                )
            bound = (pod.get("spec") or {}).get("nodeName")
            if bound:
                raise _binding_conflict(name, f'pod {name} is already assigned to node "{bound}"')
            pod.setdefault("spec", {})["nodeName"] = node
            annotations = (binding.get("metadata") or {}).get("annotations") or {}
            if annotations:
                pod["metadata"].setdefault("annotations", {}).update(annotations)
            status = pod.setdefault("status", {})
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
            ]
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(self._clock()),
                }
            )
            status["conditions"] = conditions
            return pod

        return self._write(PODS, namespace, name, assign, wanted, "binding")

    def delete(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        *,
        preconditions: dict[str, Any],
        grace_seconds: int | None = None,
        dry_run: bool = False,
        admission: Admission | None = None,
    ) -> tuple[Object, bool]:
        """Delete the object; returns it and whether it is gone. A Pod bound to a node and
        not finished is deleted gracefully, as kube-apiserver does: it gets
        metadata.deletionTimestamp (now + the grace period: `grace_seconds`, else its
        spec.terminationGracePeriodSeconds, else 30) and stays until its node's kubelet
        (the lab's driver) has stopped it and deletes it with a grace period of 0."""
        for _ in range(_RETRIES):
            kv = self.store.get(resource.key(namespace, name))
            if kv is None:
                raise not_found(resource.name, name, resource.group)
            obj = decode(kv)
            if admission is not None:
                admission(obj)
            _check_preconditions(resource, obj, preconditions)
            grace = _grace_period(resource, obj, grace_seconds)
            if grace:
                meta = obj["metadata"]
                if (
                    meta.get("deletionTimestamp")
                    and meta.get("deletionGracePeriodSeconds", 0) <= grace
                ):
                    return obj, False  # terminating already, and no sooner than asked
                meta["deletionTimestamp"] = now_rfc3339(self._clock() + grace)
                meta["deletionGracePeriodSeconds"] = grace
                if dry_run:
                    return obj, False
                updated = self.store.update(
                    kv.key, encode(obj), revision=kv.mod_revision, lease=kv.lease
                )
                if updated is not None:
                    meta["resourceVersion"] = str(updated.mod_revision)
                    return obj, False
                continue
            if dry_run or self.store.delete(kv.key, revision=kv.mod_revision):
                return obj, True
        raise conflict(resource.name, name, resource.group)

    def delete_collection(
        self,
        resource: Resource,
        namespace: str | None,
        selection: Selection,
        *,
        grace_seconds: int | None = None,
        dry_run: bool = False,
    ) -> Sequence[Object]:
        """deletecollection: every matching object, each as `delete` would."""
        deleted = []
        for obj in self.list(resource, namespace, selection).items:
            meta = obj["metadata"]
            try:
                gone, _ = self.delete(
                    resource, meta.get("namespace", ""), meta["name"], preconditions={},
                    grace_seconds=grace_seconds, dry_run=dry_run,
                )  # fmt: skip
            except NotFound:
                continue  # deleted meanwhile
            deleted.append(gone)
        return deleted

    # -- helpers -----------------------------------------------------------------------
    def _write(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        change: Callable[[Object], Object],
        wanted: str | None,
        subresource: str,
        dry_run: bool = False,
        admission: Admission | None = None,
    ) -> Object:
        """Read, admit, change, validate, compare-and-swap; retried on a lost race unless
        the caller pinned a resourceVersion."""
        for _ in range(_RETRIES):
            kv = self.store.get(resource.key(namespace, name))
            if kv is None:
                raise not_found(resource.name, name, resource.group)
            current = decode(kv)
            if admission is not None:
                admission(current)
            # Copies of the stored object are decoded afresh: json.loads of its bytes
            # costs a fraction of a copy.deepcopy of the decoded dict.
            new = _checked_body(resource, change(decode(kv)))
            new_meta = new.setdefault("metadata", {})
            pinned = wanted if wanted is not None else str(new_meta.get("resourceVersion") or "")
            if wanted is None and pinned == current["metadata"]["resourceVersion"]:
                pinned = ""  # a patch carries the current version unless it set one itself
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise conflict(resource.name, name, resource.group)
            new = _carry_over(resource, current, new, subresource, functools.partial(decode, kv))
            self._validate(resource, new, current)
            if _same(new, current):
                return current  # a no-op write changes nothing, not even the revision
            if dry_run:
                return new
            updated = self.store.update(
                kv.key, encode(new), revision=kv.mod_revision, lease=kv.lease
            )
            if updated is not None:
                new["metadata"]["resourceVersion"] = str(updated.mod_revision)
                return new
            if pinned:
                raise conflict(resource.name, name, resource.group)
        raise conflict(resource.name, name, resource.group)

    def _fresh(self, resource: Resource, namespace: str, body: Object) -> Object:
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta = obj.setdefault("metadata", {})
        for server_owned in (
            "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"
        ):  # fmt: skip
            meta.pop(server_owned, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339(self._clock())
        if resource.namespaced:
            meta["namespace"] = namespace
        if resource is NAMESPACES:
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        if resource.kind == "Pod":
            # A new pod's status is the server's (PodStrategy.PrepareForCreate): the node
            # it runs on reports the rest through pods/status.
            obj["status"] = {"phase": "Pending"}
        return obj

    def _validate(self, resource: Resource, new: Object, old: Object | None) -> None:
        name = str(new.get("metadata", {}).get("name") or "")
        causes = validate_name(resource, name) if old is None else []
        if resource.validate is not None:
            causes += resource.validate(new, old)
        if causes:
            raise invalid(resource.kind, name, causes, resource.group)

    def _require_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACES.key("", namespace)) is None:
            raise not_found(NAMESPACES.name, namespace)

    def _lease_for(self, resource: Resource) -> int:
        if not resource.ttl:
            return NO_LEASE
        now = self._clock()
        if self._event_lease == NO_LEASE or now - self._event_lease_since > _LEASE_REUSE_SECONDS:
            self._event_lease = self.store.grant(resource.ttl + _LEASE_REUSE_SECONDS)
            self._event_lease_since = now
        return self._event_lease


def _checked_body(resource: Resource, body: Any) -> Object:
    if not isinstance(body, dict):
        raise BadRequest("the body of the request is not a JSON object")
    if not isinstance(body.get("metadata", {}), dict):
        raise BadRequest("metadata must be an object")
    kind = body.get("kind")
    if kind is not None and kind != resource.kind:
        raise BadRequest(f"the object kind {kind!r} does not match the resource {resource.name!r}")
    return body


_STATUS_METADATA = ("labels", "annotations")


def _grace_period(resource: Resource, obj: Object, asked: int | None) -> int:
    """Seconds of graceful deletion: 0 (deleted at once) but for a Pod that a node runs."""
    if resource.kind != "Pod":
        return 0
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
        return 0  # nothing runs it: nothing to wait for (kube-apiserver's rule too)
    if asked is None:
        asked = spec.get("terminationGracePeriodSeconds")
        asked = 30 if asked is None else asked
    return max(0, int(asked))


def _checked_binding(name: str, body: Any) -> Object:
    if not isinstance(body, dict) or not isinstance(body.get("metadata", {}), dict):
        raise BadRequest("the body of the request is not a Binding object")
    if body.get("kind") not in (None, "Binding"):
        raise BadRequest(f"the object kind {body.get('kind')!r} is not a Binding")
    if (body.get("metadata") or {}).get("name", name) != name:
        raise BadRequest("name in URL does not match name in Binding object")
    target = body.get("target")
    causes = []
    if not isinstance(target, dict) or not target.get("name"):
        causes.append(("target.name", "Required value"))
    elif target.get("kind") not in (None, "", "Node"):
        kind = target["kind"]
        causes.append(("target.kind", f"Invalid value: \"{kind}\": must be empty or 'Node'"))
    if causes:
        raise invalid("Binding", name, causes)
    return body


def _binding_conflict(name: str, why: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on pods/binding "{name}": {why}',
        details={"name": name, "kind": "pods/binding"},
    )


def _carry_over(
    resource: Resource,
    current: Object,
    new: Object,
    subresource: str,
    copy_of_current: Callable[[], Object],
) -> Object:
    """What a write may not change: identity, and (per subresource) spec or status. A
    binding (computed by the server itself) sets spec.nodeName and a status condition.
    `copy_of_current` makes a copy of `current` that `new` may keep."""
    new["apiVersion"], new["kind"] = resource.api_version, resource.kind
    meta, old_meta = new.setdefault("metadata", {}), current["metadata"]
    for fixed in ("name", "namespace", "uid", "creationTimestamp"):
        if fixed in old_meta:
            meta[fixed] = old_meta[fixed]
    for server_owned in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        if server_owned in old_meta:
            meta[server_owned] = old_meta[server_owned]
        else:
            meta.pop(server_owned, None)
    meta.pop("resourceVersion", None)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    if resource.has_status and subresource != "binding":
        if subresource == "status":
            # Only status changes; metadata and spec stay as they were. A Node's labels and
            # annotations are the exception (kube-apiserver's node status strategy resets
            # only the spec): flanneld publishes its annotations through nodes/status.
            status = new.get("status")
            kept = {k: meta[k] for k in _STATUS_METADATA if k in meta}
            new.clear()
            new.update(copy_of_current())
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if resource.kind == "Node":
                for key in _STATUS_METADATA:
                    new["metadata"].pop(key, None)
                new["metadata"].update(kept)
        elif "status" in current:
            new["status"] = copy_of_current()["status"]
        else:
            new.pop("status", None)
    return new


def _same(a: Object, b: Object) -> bool:
    return encode(a) == encode(b)


def _check_preconditions(resource: Resource, obj: Object, preconditions: dict[str, Any]) -> None:
    meta = obj["metadata"]
    uid = preconditions.get("uid")
    if uid and uid != meta.get("uid"):
        raise Conflict(
            f"Precondition failed: UID in precondition: {uid}, "
            f"UID in object meta: {meta.get('uid')}",
            details={"name": meta["name"], "kind": resource.name},
        )
    version = preconditions.get("resourceVersion")
    if version and str(version) != meta.get("resourceVersion"):
        raise conflict(resource.name, meta["name"], resource.group)


def _continue_token(revision: int, last_key: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key + "\0"})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _parse_continue(token: str, prefix: str) -> str:
    """The key the next page starts after."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        start = str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest(f"continue key is not valid: {exc}") from exc
    if not start.startswith(prefix):
        raise BadRequest("continue key is not valid: it belongs to another list")
    return start.removesuffix("\0")
