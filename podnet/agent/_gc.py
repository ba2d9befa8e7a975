"""The agent's garbage collector: frees what sandboxes the runtime has forgotten left behind.

A runtime that loses a sandbox without running CNI DEL (its state wiped or corrupted, a
container deleted behind its back) leaves the pod's address reserved forever: nothing
will ever call DEL for it. containerd 1.6 does not send CNI GC either. So the agent does
it, every `interval` seconds:

1. ask the runtime over CRI for its sandboxes (ListPodSandbox): every sandbox it lists
   is valid, ready or not, since the runtime will still stop it (DEL) itself. If the
   call fails the round is skipped: an empty list because of an error must never free
   every address on the node;
2. close the gate (podnet.agent._gate): no CNI request runs while GC decides and acts;
3. read what the node's chain keeps per attachment: host-local reservations, flannel's
   saved delegate configs, the runtime's cached results of this very network config;
4. keep as valid, besides the listed sandboxes, every attachment whose files are younger
   than `grace`: containerd runs ADD inside RunPodSandbox and lists the sandbox only
   after it, so a pod being created looks exactly like a forgotten one for a moment;
5. run the runtime library's GC with that valid set: a full DEL of every cached
   attachment not in it (of our config only: containerd's cache dir is shared by every
   runtime on the machine), then the GC verb through the chain (flannel removes its
   saved configs and forwards to bridge and host-local, which releases the addresses).
   The verb exists from CNI 1.1.0 on; containerd 1.6 needs a 1.0.0 conflist, so when
   every plugin of the list is podnet's, the verb is sent with the list at 1.1.0;
6. compare what is on disk with step 3, drop the runtime's other cached attachments of
   the containers just freed (containerd's loopback), and log every address and file
   freed.

The chain runs in this process (`InProcessExec`): it is warm, and the socket requests
would come through is the one GC just closed. Its verbs see the CNI server's `HostState`,
so a DEL waits for a veth the server is still destroying.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from podnet.agent._gate import Gate, GateBusy
from podnet.cni import (
    CURRENT_VERSION,
    CNIError,
    Host,
    HostState,
    dispatch,
    plugin_environ,
    plugin_error,
)
from podnet.plugins import PodnetExec, podnet_type_of
from podnet.plugins.ipam.host_local import DEFAULT_DATA_DIR as HOST_LOCAL_DATA_DIR
from podnet.plugins.ipam.host_local import DiskStore
from podnet.plugins.meta.flannel import DEFAULT_DATA_DIR as FLANNEL_DATA_DIR
from podnet.plugins.meta.flannel import ScratchDir
from podnet.runtime import (
    CNI,
    DEFAULT_CACHE_DIR,
    POD_IFNAME,
    Exec,
    GCAttachment,
    NetworkConfigList,
    ResultCache,
    scan_conf_dir,
)

log = logging.getLogger("podnet.agent.gc")

DEFAULT_GC_INTERVAL = 60.0
DEFAULT_GC_GRACE = 60.0
# How long GC waits for the CNI requests in flight before it skips its round; the pods
# that arrive meanwhile wait behind it, so this is also what GC may add to a pod's ADD.
DEFAULT_GATE_TIMEOUT = 10.0

RESERVATION = "reservation"  # host-local: <dataDir>/<network>/<ip>
SCRATCH = "saved config"  # flannel: <dataDir>/<containerID>
CACHED = "cached result"  # the runtime's libcni cache: <cacheDir>/results/<net>-<id>-<if>


class InProcessExec(PodnetExec):
    """The runtime library's Exec for the agent: podnet's own executables run in this
    process, with a host over `host_state` (the CNI server's, in the agent), any other
    plugin (a reference binary) as a process."""

    def __init__(self, host_state: HostState | None = None) -> None:
        super().__init__()
        self.host_state = host_state if host_state is not None else HostState()

    def exec_plugin(self, executable: str, cni_env: Mapping[str, str], stdin: bytes) -> bytes:
        plugin = self.plugin_here(executable)
        if plugin is None:
            return super().exec_plugin(executable, cni_env, stdin)
        with Host(self.host_state) as host:
            code, out = dispatch(plugin, plugin_environ(cni_env), stdin, host)
        if code != 0:
            raise plugin_error(out, b"")
        return out


@dataclass(frozen=True)
class Footprint:
    """One file the chain keeps for one attachment. `ifname` is empty when the file does
    not say (flannel's saved configs are per container)."""

    kind: str
    container_id: str
    ifname: str
    what: str  # the address of a reservation, the file's path otherwise
    mtime: float

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.container_id, self.ifname, self.what)

    def describe(self) -> str:
        owner = f"{self.container_id[:12]} {self.ifname}".strip()
        if self.kind == RESERVATION:
            return f"released {self.what} (reserved for {owner})"
        return f"removed the {self.kind} of {owner}: {self.what}"


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def state_dirs(network: NetworkConfigList) -> tuple[list[str], list[str]]:
    """Where the chain of `network` keeps per-attachment files: flannel's scratch dirs
    and host-local's data dirs, as each plugin's config (or default) names them."""
    scratch, ipam_dirs = [], []
    for plugin in network.plugins:
        ipam = plugin.get("ipam")
        ipam = ipam if isinstance(ipam, dict) else None
        if plugin.get("type") == "flannel":
            scratch.append(_text(plugin.get("dataDir"), FLANNEL_DATA_DIR))
            if (ipam or {}).get("type", "host-local") == "host-local":  # flannel's default
                ipam_dirs.append(_text((ipam or {}).get("dataDir"), HOST_LOCAL_DATA_DIR))
        elif ipam is not None and ipam.get("type") == "host-local":
            ipam_dirs.append(_text(ipam.get("dataDir"), HOST_LOCAL_DATA_DIR))
    return scratch, ipam_dirs


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None  # gone between listing and stat: nothing to keep or free


def footprints(network: NetworkConfigList, cache_dir: str) -> list[Footprint]:
    """Every per-attachment file of `network` on this node (cached results only when
    their config is this very config list: others' entries share the cache dir)."""
    found = []
    scratch_dirs, ipam_dirs = state_dirs(network)
    for data_dir in ipam_dirs:
        store = DiskStore(data_dir, network.name)
        for reservation in store.reservations():
            mtime = _mtime(os.path.join(store.directory, reservation.filename))
            owner = reservation.attachment()
            container_id, ifname = (
                (owner.container_id, owner.ifname) if owner else (reservation.owner, "")
            )
            if mtime is not None:
                found.append(
                    Footprint(RESERVATION, container_id, ifname, str(reservation.address), mtime)
                )
    for data_dir in scratch_dirs:
        scratch = ScratchDir(data_dir)
        for container_id in scratch.container_ids():
            path = scratch.path(container_id)
            mtime = _mtime(path)
            if mtime is not None:
                found.append(Footprint(SCRATCH, container_id, "", path, mtime))
    cache = ResultCache(cache_dir)
    for attachment in cache.attachments():
        if attachment.network_name != network.name or attachment.config != network.raw:
            continue
        path = cache.path(attachment.network_name, attachment.container_id, attachment.ifname)
        mtime = _mtime(path)
        if mtime is not None:
            found.append(Footprint(CACHED, attachment.container_id, attachment.ifname, path, mtime))
    return found


@dataclass
class GCRound:
    """What one round did. `kept_recent` are attachments no sandbox lists that were kept
    because their files are younger than the grace period."""

    sandboxes: int = 0
    network: str = ""
    kept_recent: list[GCAttachment] = field(default_factory=list)
    freed: list[Footprint] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: str = ""


class GarbageCollector:
    """One node's GC: `list_sandboxes` names the sandbox IDs (= CNI container IDs) the
    runtime knows and raises when it cannot; `gate` is the one the CNI server uses."""

    def __init__(
        self,
        *,
        conf_dir: str,
        bin_dir: str,
        list_sandboxes: Callable[[], Iterable[str]],
        gate: Gate,
        cache_dir: str = DEFAULT_CACHE_DIR,
        grace: float = DEFAULT_GC_GRACE,
        ifname: str = POD_IFNAME,
        exec_: Exec | None = None,
        clock: Callable[[], float] = time.time,
        gate_timeout: float = DEFAULT_GATE_TIMEOUT,
    ) -> None:
        self.conf_dir = conf_dir
        self.cache_dir = cache_dir
        self.list_sandboxes = list_sandboxes
        self.gate = gate
        self.grace = grace
        self.ifname = ifname
        self.clock = clock
        self.gate_timeout = gate_timeout
        self.cni = CNI(
            (bin_dir,), cache_dir=cache_dir, exec_=exec_ if exec_ is not None else InProcessExec()
        )
        self.rounds = 0
        self.freed_total = 0

    def run_once(self) -> GCRound:
        try:
            sandboxes = set(self.list_sandboxes())
        except Exception as exc:  # whatever the runtime client raised: no list, no GC
            return self._done(GCRound(skipped=f"cannot list the runtime's sandboxes: {exc}"))
        report = GCRound(sandboxes=len(sandboxes))
        try:
            with self.gate.exclusive(self.gate_timeout):
                self._collect(report, sandboxes)
        except GateBusy as exc:
            # A request stuck in flight must not hold GC, nor the pods queued behind it.
            report.skipped = f"CNI requests kept the gate busy ({exc}); this round is skipped"
        return self._done(report)

    def _collect(self, report: GCRound, sandboxes: set[str]) -> None:
        """One round's work, with the gate held."""
        try:
            network = scan_conf_dir(self.conf_dir).default()
        except CNIError as exc:
            report.skipped = f"no network config to collect for: {exc}"
            return
        report.network = network.name
        before = footprints(network, self.cache_dir)
        valid = {GCAttachment(sandbox, self.ifname) for sandbox in sandboxes}
        now = self.clock()
        for item in before:
            if item.container_id in sandboxes or now - item.mtime >= self.grace:
                continue
            recent = GCAttachment(item.container_id, item.ifname or self.ifname)
            if recent not in valid:
                valid.add(recent)
                report.kept_recent.append(recent)
        ordered = sorted(valid, key=lambda a: (a.container_id, a.ifname))
        result = self.cni.gc(network, ordered, owned=lambda a: a.config == network.raw)
        errors = list(result.errors)
        if not result.gc_sent and not result.skipped and self._all_ours(network):
            # The runtime's config predates GC (containerd 1.6 speaks CNI 1.0.0 at
            # most), but podnet's plugins have the verb at any config: ask in 1.1.0.
            raised = replace(network, cni_version=CURRENT_VERSION)
            errors += self.cni.gc_verb(raised, ordered)
        left = {item.key for item in footprints(network, self.cache_dir)}
        report.freed = [item for item in before if item.key not in left]
        gone = {item.container_id for item in report.freed} - sandboxes
        report.freed += self._drop_companions(network.name, gone, errors)
        report.errors = [str(error) for error in errors]

    def _drop_companions(
        self, network_name: str, container_ids: set[str], errors: list[CNIError]
    ) -> list[Footprint]:
        """The runtime's other cached attachments of the containers just freed: containerd
        also caches the `lo` of every sandbox under its built-in network "cni-loopback".
        Only these: a container ID is unique, and one whose files of our network were
        just freed was ours, while other entries of the shared cache dir may not be."""
        dropped = []
        for attachment in self.cni.cache.attachments():
            if attachment.container_id not in container_ids:
                continue
            if attachment.network_name == network_name:
                continue  # left by a failed DEL above: reported there, retried next round
            path = self.cni.cache.path(
                attachment.network_name, attachment.container_id, attachment.ifname
            )
            mtime = _mtime(path) or 0.0
            try:
                self.cni.delete_attachment(attachment)
            except CNIError as exc:
                errors.append(exc)
                continue
            dropped.append(
                Footprint(CACHED, attachment.container_id, attachment.ifname, path, mtime)
            )
        return dropped

    def _all_ours(self, network: NetworkConfigList) -> bool:
        try:
            executables = [
                self.cni.exec.find_in_path(t, self.cni.paths) for t in network.plugin_types
            ]
        except CNIError:
            return False
        return all(podnet_type_of(executable) is not None for executable in executables)

    def _done(self, report: GCRound) -> GCRound:
        self.rounds += 1
        self.freed_total += sum(1 for item in report.freed if item.kind == RESERVATION)
        if report.skipped:
            log.warning("GC skipped: %s", report.skipped)
            return report
        for item in report.freed:
            log.info("GC %s: %s", report.network, item.describe())
        for error in report.errors:
            log.warning("GC %s: %s", report.network, error)
        if report.kept_recent:
            log.info(
                "GC %s: kept %d attachment(s) younger than %gs that no sandbox lists yet",
                report.network,
                len(report.kept_recent),
                self.grace,
            )
        return report

    def run(self, stop: threading.Event, interval: float) -> None:
        """A round every `interval` seconds until `stop`; the first after one interval
        (the runtime had time to list what it was creating when the agent started)."""
        while not stop.wait(interval):
            try:
                self.run_once()
            except Exception:  # one bad round must not end GC for the agent's lifetime
                log.exception("GC round failed")
