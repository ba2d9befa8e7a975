"""The runtime's own record of its pod sandboxes: one JSON file per sandbox in a state dir,
`<namespace>_<name>.json` (both are DNS names, so '_' cannot occur in them).

This is what containerd keeps in its metadata store, cut down to the network part; GC
asks it which attachments are still in use. A lock file serialises GC (exclusive)
against pod start and stop (shared), as the spec requires GC not to race ADD/DEL.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from podnet.cni import atomic_write
from podnet.runtime._errors import PodExists, SandboxError

DEFAULT_STATE_DIR = "/var/lib/podnet/pods"

CREATING = "creating"  # being set up (or its creator died: not a valid attachment)
READY = "ready"  # network set up
STOPPED = "stopped"  # network torn down, netns removed

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")


def validate_pod_name(namespace: str, name: str) -> None:
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        raise SandboxError(f"invalid namespace {namespace!r}: must be a DNS label")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise SandboxError(f"invalid pod name {name!r}: must be a DNS subdomain")


@dataclass(frozen=True)
class Sandbox:
    """A pod sandbox as far as networking goes. `id` is also the CNI container ID."""

    id: str
    name: str
    namespace: str
    uid: str
    netns: str
    network: str = ""
    conf_file: str = ""
    ifname: str = "eth0"
    state: str = CREATING
    ip: str = ""  # the pod IP: its first IPv4 address, else its first (as containerd's)
    created: str = ""
    # the pod's other addresses, in the CNI result's order (a dual-stack pod's IPv6 one):
    # CRI's PodSandboxStatus additional_ips, a Pod's status.podIPs after the first
    additional_ips: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ips(self) -> tuple[str, ...]:
        """Every pod IP, the pod IP first (a Pod's status.podIPs)."""
        return (self.ip, *self.additional_ips) if self.ip else ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "additional_ips": list(self.additional_ips)}

    @classmethod
    def from_json(cls, obj: Any) -> Sandbox:
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        fields = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        extra = fields.pop("additional_ips", [])
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("every field must be a string")
        if not isinstance(extra, list) or not all(isinstance(v, str) for v in extra):
            raise ValueError("additional_ips must be a list of strings")
        return cls(**fields, additional_ips=tuple(extra))


class SandboxStore:
    def __init__(self, state_dir: str = DEFAULT_STATE_DIR) -> None:
        self.state_dir = state_dir

    def path(self, namespace: str, name: str) -> str:
        return os.path.join(self.state_dir, f"{namespace}_{name}.json")

    @contextmanager
    def lock(self, *, exclusive: bool) -> Iterator[None]:
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.state_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing drops the lock

    def create(self, sandbox: Sandbox) -> None:
        """Record a new sandbox; PodExists if the name is taken (atomic: the file appears
        complete or not at all, and of two racing creators only one wins)."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        path = self.path(sandbox.namespace, sandbox.name)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.state_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_encode(sandbox))
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)
        except FileExistsError:
            raise PodExists(f"pod {sandbox.key} already exists") from None
        finally:
            os.unlink(tmp)

    def save(self, sandbox: Sandbox) -> None:
        atomic_write(self.path(sandbox.namespace, sandbox.name), _encode(sandbox), mode=0o600)

    def get(self, namespace: str, name: str) -> Sandbox | None:
        path = self.path(namespace, name)
        try:
            with open(path, "rb") as handle:
                return Sandbox.from_json(json.loads(handle.read()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise SandboxError(f"unreadable sandbox record {path}: {exc}") from None

    def delete(self, namespace: str, name: str) -> None:
        try:
            os.unlink(self.path(namespace, name))
        except FileNotFoundError:
            pass

    def all(self) -> list[Sandbox]:
        """Every readable record, by namespace and name."""
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return []
        found = []
        for filename in names:
            if filename.startswith(".") or not filename.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.state_dir, filename), "rb") as handle:
                    found.append(Sandbox.from_json(json.loads(handle.read())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(found, key=lambda s: (s.namespace, s.name))


def _encode(sandbox: Sandbox) -> bytes:
    return (json.dumps(sandbox.to_json(), indent=2) + "\n").encode()
