"""Who is asking (bearer tokens) and what they may do.

Tokens come from a file in kube-apiserver's --token-auth-file format, one identity a
line: `token,user,uid,"group1,group2"`. There is no anonymous access: a request without a
known token gets 401, except the public health and version endpoints.

Authorization follows what a kubeadm cluster gives these identities:
- group `system:masters` (the admin kubeconfig): everything.
- `system:node:NAME` in group `system:nodes` (the Node authorizer, RBAC's system:node
  role and the NodeRestriction admission plugin): read nodes, pods and namespaces; write
  events; its own Lease in kube-node-lease; create and change only its own Node (and its
  status); change the status of (and delete) only the pods bound to it. The checks that
  need the object (which node a pod is bound to) are made in `admit`.
- `system:kube-controller-manager` (nodeipam and the other controllers): read
  everything, change nodes (podCIDR) and their status, write events, pods, and leases
  for leader election.
- `system:kube-scheduler` (RBAC's system:kube-scheduler role): read everything, bind
  pods to nodes (pods/binding), write pod status (the PodScheduled condition), events,
  and leases for leader election.
Anything else is refused with 403 in RBAC's words.
"""

from __future__ import annotations

import csv
import hmac
import io
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from podnet.apiserver._resources import Resource
from podnet.apiserver._status import Forbidden, forbidden

log = logging.getLogger(__name__)

MASTERS = "system:masters"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
CONTROLLER_MANAGER = "system:kube-controller-manager"
SCHEDULER = "system:kube-scheduler"
AUTHENTICATED = "system:authenticated"
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})


class TokenFileError(Exception):
    """The token file cannot be read or has a malformed line."""


@dataclass(frozen=True)
class Identity:
    user: str
    uid: str
    groups: tuple[str, ...]

    @property
    def node_name(self) -> str:
        """NAME for `system:node:NAME` in group system:nodes, else ""."""
        if NODES_GROUP in self.groups and self.user.startswith(NODE_PREFIX):
            return self.user.removeprefix(NODE_PREFIX)
        return ""


@dataclass(frozen=True)
class Request:
    verb: str
    resource: Resource
    namespace: str
    name: str
    subresource: str = ""

    @property
    def qualified(self) -> str:
        return self.resource.name + (f"/{self.subresource}" if self.subresource else "")


class Tokens:
    def __init__(self, identities: Mapping[str, Identity]) -> None:
        self._identities = dict(identities)

    @classmethod
    def load(cls, path: str) -> Tokens:
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as exc:
            raise TokenFileError(f"token file {path}: {exc.strerror or exc}") from exc
        return cls.parse(text, source=path)

    @classmethod
    def parse(cls, text: str, *, source: str = "token file") -> Tokens:
        identities: dict[str, Identity] = {}
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3 or not row[0] or not row[1]:
                raise TokenFileError(f'{source}:{number}: expected token,user,uid[,"groups"]')
            groups = (
                tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
            )
            identities[row[0]] = Identity(user=row[1], uid=row[2], groups=groups)
        if not identities:
            raise TokenFileError(f"{source}: no tokens")
        return cls(identities)

    def token_of(self, user: str) -> str | None:
        """The token of `user` (to write a kubeconfig for it), or None."""
        for token, identity in self._identities.items():
            if identity.user == user:
                return token
        return None

    def authenticate(self, header: str) -> Identity | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        token = token.strip()
        for known, identity in self._identities.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return identity
        return None


class TokenFile(Tokens):
    """The tokens of a file, read again when it changes (checked at most once a second),
    so an identity added to it (a node joining the lab) works without a restart. A file
    that turns unreadable or malformed keeps the tokens read last."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._reload_lock = threading.Lock()
        super().__init__({})
        self._reload()

    def _reload(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise TokenFileError(f"token file {self.path}: {exc.strerror or exc}") from exc
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp != self._stamp:
            self._identities = Tokens.load(self.path)._identities
            self._stamp = stamp

    def authenticate(self, header: str) -> Identity | None:
        now = time.monotonic()
        if now - self._checked >= 1.0 and self._reload_lock.acquire(blocking=False):
            try:
                self._checked = now
                self._reload()
            except TokenFileError as exc:
                log.warning("%s; keeping the tokens read before", exc)
            finally:
                self._reload_lock.release()
        return super().authenticate(header)


def write_token_file(path: str, rows: list[tuple[str, str, str, tuple[str, ...]]]) -> None:
    """Write (token, user, uid, groups) rows, readable by the owner alone."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for token, user, uid, groups in rows:
        writer.writerow([token, user, uid, ",".join(groups)])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(buffer.getvalue())
    os.chmod(path, 0o600)


def authorize(identity: Identity, request: Request) -> None:
    """Forbidden unless `identity` may make `request` (see the module docstring)."""
    if MASTERS in identity.groups:
        return
    node = identity.node_name
    if node and _node_allows(node, request):
        return
    if identity.user == CONTROLLER_MANAGER and _controller_allows(request):
        return
    if identity.user == SCHEDULER and _scheduler_allows(request):
        return
    raise _rbac_denial(identity, request)


def admit(identity: Identity, request: Request, bound_node: str | None) -> None:
    """NodeRestriction: a node changes only its own Node and the pods bound to it.
    `bound_node` is the current pod's spec.nodeName (for pod requests)."""
    node = identity.node_name
    if not node or MASTERS in identity.groups or request.verb in READ_VERBS:
        return
    kind = request.resource.kind
    if kind == "Node" and request.name != node:
        raise forbidden(
            "nodes",
            request.name,
            "",
            f'node "{node}" is not allowed to modify node "{request.name}"',
        )
    if kind == "Pod" and bound_node != node:
        raise forbidden(
            "pods",
            request.name,
            "",
            f'node "{node}" can only update pod status for pods with spec.nodeName set to itself'
            if request.subresource == "status"
            else f'node "{node}" can only delete pods with spec.nodeName set to itself',
        )


def _node_allows(node: str, request: Request) -> bool:
    kind, verb = request.resource.kind, request.verb
    if kind in ("Node", "Pod", "Namespace") and verb in READ_VERBS:
        return True
    if kind == "Node" and verb in ("create", "update", "patch"):
        return True  # admit() pins the name to the node's own
    if kind == "Pod":
        return (request.subresource == "status" and verb in ("update", "patch")) or verb == "delete"
    if kind == "Event":
        return verb in ("create", "update", "patch") or verb in READ_VERBS
    if kind == "Lease":
        return request.namespace == "kube-node-lease" and request.name == node
    return False


def _scheduler_allows(request: Request) -> bool:
    kind, verb = request.resource.kind, request.verb
    if verb in READ_VERBS:
        return True
    if kind == "Pod":
        return (request.subresource == "binding" and verb == "create") or (
            request.subresource == "status" and verb in ("update", "patch")
        )
    return kind in ("Event", "Lease") and verb in WRITE_VERBS


def _controller_allows(request: Request) -> bool:
    kind, verb = request.resource.kind, request.verb
    if verb in READ_VERBS:
        return True
    if kind == "Node":
        return verb in ("update", "patch")
    if kind in ("Event", "Pod", "Lease"):
        return verb in WRITE_VERBS
    return False


def _rbac_denial(identity: Identity, request: Request) -> Forbidden:
    scope = (
        f'in the namespace "{request.namespace}"'
        if request.resource.namespaced and request.namespace
        else "at the cluster scope"
    )
    return forbidden(
        request.resource.name,
        request.name,
        request.resource.group,
        f'User "{identity.user}" cannot {request.verb} resource "{request.qualified}" in API '
        f'group "{request.resource.group}" {scope}',
    )
