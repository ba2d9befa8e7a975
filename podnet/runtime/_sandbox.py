"""Pod sandboxes: the network part of containerd's CRI plugin.

RunPodSandbox: create the pod's netns (`cni-<uuid>` bind-mounted in the netns dir), bring
`lo` up, ADD the default network on eth0 with the K8S_* CNI_ARGS, and report the pod IP
(first IPv4 on eth0). Anything failing after the netns exists tears down what was done:
DEL, then the netns.

StopPodSandbox: DEL, then remove the netns. It may be called again and again; once the
netns is gone the DEL goes out with an empty netns, as containerd sends it. Remove after
stop only forgets the record.

DEL, CHECK and GC use the config the ADD ran with (the cache keeps it), like CRI-O's
ocicni, so a conflist replaced while pods run does not leave their IPs behind.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from podnet.cni import CNIError, DecodingFailure, Exec, IPConfig, Result
from podnet.netlink import (
    DEFAULT_NETNS_DIR,
    bring_up_loopback,
    create_netns,
    delete_netns,
    is_netns,
)
from podnet.runtime._chain import (
    CNI,
    DEFAULT_BIN_DIRS,
    DEFAULT_CACHE_DIR,
    GCReport,
    PluginStatus,
    network_of,
)
from podnet.runtime._conf import ConfScan, NetworkConfigList, scan_conf_dir
from podnet.runtime._errors import PodNotFound, SandboxError
from podnet.runtime._state import (
    CREATING,
    DEFAULT_STATE_DIR,
    READY,
    STOPPED,
    Sandbox,
    SandboxStore,
    validate_pod_name,
)
from podnet.runtime._types import GCAttachment, RuntimeConf, pod_args

DEFAULT_CONF_DIR = "/etc/cni/net.d"
POD_IFNAME = "eth0"

_log = logging.getLogger("podnet.runtime")


@dataclass(frozen=True)
class RuntimePaths:
    conf_dir: str = DEFAULT_CONF_DIR
    bin_dirs: tuple[str, ...] = DEFAULT_BIN_DIRS
    cache_dir: str = DEFAULT_CACHE_DIR
    netns_dir: str = DEFAULT_NETNS_DIR
    state_dir: str = DEFAULT_STATE_DIR


@dataclass(frozen=True)
class PodRun:
    sandbox: Sandbox
    result: Result


@dataclass
class StatusReport:
    """Whether pods can be started: the default network, its plugins, their STATUS."""

    network: NetworkConfigList | None = None
    warnings: list[str] = field(default_factory=list)
    error: CNIError | None = None
    statuses: list[PluginStatus] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.error is None and all(s.error is None for s in self.statuses)


def pod_ips(result: Result, ifname: str = POD_IFNAME) -> list[IPConfig]:
    """The result's IPs on `ifname`; an IP without an interface index belongs to the
    default interface, as go-cni reads it."""
    found = []
    for ip in result.ips:
        if ip.interface is None:
            name = ifname
        elif 0 <= ip.interface < len(result.interfaces):
            name = result.interfaces[ip.interface].name
        else:
            raise DecodingFailure(f"result IP {ip.address} names interface {ip.interface}")
        if name == ifname:
            found.append(ip)
    return found


def pod_ip(result: Result, ifname: str = POD_IFNAME) -> str:
    """containerd's pod IP: the first IPv4 on eth0, else its first IP."""
    return pod_addresses(result, ifname)[0]


def pod_addresses(result: Result, ifname: str = POD_IFNAME) -> tuple[str, tuple[str, ...]]:
    """containerd's pod IP and additional IPs (its selectPodIPs): the first IPv4 on eth0,
    else its first IP; then every other IP on eth0 in the result's order."""
    ips = [str(ip.address.ip) for ip in pod_ips(result, ifname)]
    if not ips:
        raise SandboxError(f"the CNI result has no IP address on {ifname}")
    primary = next((ip for ip in ips if ":" not in ip), ips[0])
    return primary, tuple(ip for ip in ips if ip != primary)


class PodRuntime:
    """Pod sandboxes over one conf dir, bin dirs, cache, netns dir and state dir."""

    def __init__(
        self,
        paths: RuntimePaths = RuntimePaths(),
        *,
        exec_: Exec | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.paths = paths
        self.cni = CNI(paths.bin_dirs, cache_dir=paths.cache_dir, exec_=exec_)
        self.store = SandboxStore(paths.state_dir)
        self.warn = warn if warn is not None else _log.warning

    # ---- configuration --------------------------------------------------------------

    def scan(self, *, report: bool = True) -> ConfScan:
        scan = scan_conf_dir(self.paths.conf_dir)
        if report:
            for message in scan.warnings():
                self.warn(message)
        return scan

    def _runtime_conf(
        self, sandbox: Sandbox, *, netns: str, capability_args: Mapping[str, Any] | None = None
    ) -> RuntimeConf:
        return RuntimeConf(
            container_id=sandbox.id,
            netns=netns,
            ifname=sandbox.ifname,
            args=pod_args(
                namespace=sandbox.namespace,
                name=sandbox.name,
                infra_container_id=sandbox.id,
                uid=sandbox.uid,
            ),
            capability_args=dict(capability_args or {}),
        )

    def _network_for(self, sandbox: Sandbox) -> NetworkConfigList | None:
        """The list the pod was added with: its cached config, else the configured list
        of the same name; None if neither exists."""
        current = self.scan(report=False).by_name(sandbox.network)
        rt = self._runtime_conf(sandbox, netns="")
        try:
            cached = self.cni.cached_attachment(sandbox.network, rt)
        except CNIError:
            cached = None
        if cached is not None and cached.config:
            return network_of(cached, current)
        return current

    def _get(self, name: str, namespace: str) -> Sandbox:
        validate_pod_name(namespace, name)
        sandbox = self.store.get(namespace, name)
        if sandbox is None:
            raise PodNotFound(f"pod {namespace}/{name} not found")
        return sandbox

    # ---- run ------------------------------------------------------------------------

    def run(
        self,
        name: str,
        namespace: str = "default",
        *,
        capability_args: Mapping[str, Any] | None = None,
    ) -> PodRun:
        validate_pod_name(namespace, name)
        network = self.scan().default()
        sandbox = Sandbox(
            id=secrets.token_hex(32),
            name=name,
            namespace=namespace,
            uid=str(uuid.uuid4()),
            netns=os.path.join(self.paths.netns_dir, f"cni-{uuid.uuid4()}"),
            network=network.name,
            conf_file=network.source,
            ifname=POD_IFNAME,
            state=CREATING,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        rt = self._runtime_conf(sandbox, netns=sandbox.netns, capability_args=capability_args)
        with self.store.lock(exclusive=False):
            self.store.create(sandbox)
            added = False
            try:
                try:
                    create_netns(sandbox.netns)
                    bring_up_loopback(sandbox.netns)
                except OSError as exc:
                    raise SandboxError(f"failed to set up network namespace: {exc}") from exc
                result = self.cni.add(network, rt)
                added = True
                ip, additional = pod_addresses(result, sandbox.ifname)
                sandbox = replace(sandbox, state=READY, ip=ip, additional_ips=additional)
                self.store.save(sandbox)
            except BaseException as exc:
                self._undo_run(sandbox, network, rt, added=added, cause=exc)
                raise
        return PodRun(sandbox, result)

    def _undo_run(
        self,
        sandbox: Sandbox,
        network: NetworkConfigList,
        rt: RuntimeConf,
        *,
        added: bool,
        cause: BaseException,
    ) -> None:
        """Tear down a half-started pod: DEL (ADD undoes itself when it fails, so only
        after a successful ADD), then the netns, then the record. What cannot be undone
        is reported; the record then stays for `pod rm` (and GC treats it as dead)."""
        problems = []
        if added:
            try:
                self.cni.delete(network, rt)
            except CNIError as exc:
                problems.append(str(exc))
        try:
            delete_netns(sandbox.netns)
        except OSError as exc:
            problems.append(f"removing {sandbox.netns}: {exc}")
        if not problems:
            self.store.delete(sandbox.namespace, sandbox.name)
            return
        raise SandboxError(
            f"{cause}; cleaning up also failed: {'; '.join(problems)}; "
            f"retry with `podnet pod rm {sandbox.name}`"
        ) from cause

    # ---- stop, remove ---------------------------------------------------------------

    def stop(self, name: str, namespace: str = "default") -> Sandbox:
        with self.store.lock(exclusive=False):
            return self._stop(self._get(name, namespace))

    def _cached_capability_args(self, sandbox: Sandbox) -> dict[str, Any]:
        """The capability args the pod was added with (its hostPorts), from the cache: DEL
        and CHECK get them again, as containerd hands the sandbox's port mappings to both."""
        try:
            cached = self.cni.cached_attachment(
                sandbox.network, self._runtime_conf(sandbox, netns="")
            )
        except CNIError:
            return {}
        return dict(cached.capability_args) if cached is not None else {}

    def _stop(self, sandbox: Sandbox) -> Sandbox:
        alive = is_netns(sandbox.netns)
        rt = self._runtime_conf(
            sandbox,
            netns=sandbox.netns if alive else "",
            capability_args=self._cached_capability_args(sandbox),
        )
        network = self._network_for(sandbox)
        if network is not None:
            self.cni.delete(network, rt)
        elif sandbox.state != STOPPED:
            raise SandboxError(
                f'cannot DEL pod {sandbox.key}: network "{sandbox.network}" is not configured '
                "and the pod has no cache entry"
            )
        try:
            delete_netns(sandbox.netns)
        except OSError as exc:
            raise SandboxError(f"failed to remove network namespace: {exc}") from exc
        stopped = replace(sandbox, state=STOPPED)
        self.store.save(stopped)
        return stopped

    def remove(self, name: str, namespace: str = "default") -> bool:
        """Stop the pod unless it is stopped, then forget it. False if it was unknown."""
        validate_pod_name(namespace, name)
        with self.store.lock(exclusive=False):
            sandbox = self.store.get(namespace, name)
            if sandbox is None:
                return False
            if sandbox.state != STOPPED:
                self._stop(sandbox)
            self.store.delete(namespace, name)
            return True

    # ---- check, inspect, list -------------------------------------------------------

    def check(self, name: str, namespace: str = "default") -> None:
        sandbox = self._get(name, namespace)
        if sandbox.state != READY:
            raise SandboxError(f"pod {sandbox.key} is {sandbox.state}, not ready")
        if not is_netns(sandbox.netns):
            raise SandboxError(f"pod {sandbox.key}: network namespace {sandbox.netns} is gone")
        network = self._network_for(sandbox)
        if network is None:
            raise SandboxError(f'pod {sandbox.key}: network "{sandbox.network}" is unknown')
        rt = self._runtime_conf(
            sandbox, netns=sandbox.netns, capability_args=self._cached_capability_args(sandbox)
        )
        self.cni.check(network, rt)

    def inspect(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """The record, whether its netns lives, and its cache entry with the result."""
        sandbox = self._get(name, namespace)
        rt = self._runtime_conf(sandbox, netns=sandbox.netns)
        out: dict[str, Any] = {
            "sandbox": sandbox.to_json(),
            "netnsAlive": is_netns(sandbox.netns),
        }
        try:
            cached = self.cni.cached_attachment(sandbox.network, rt)
        except CNIError as exc:
            out["cacheError"] = str(exc)
            cached = None
        out["cacheFile"] = self.cni.cache.path(sandbox.network, sandbox.id, sandbox.ifname)
        if cached is not None:
            out["cache"] = {
                "netns": cached.netns,
                "cniArgs": [list(p) for p in cached.cni_args],
                "capabilityArgs": dict(cached.capability_args),
                "result": cached.result,
            }
        return out

    def pods(self) -> list[Sandbox]:
        return self.store.all()

    def pod(self, name: str, namespace: str = "default") -> Sandbox | None:
        """One sandbox's record, without reading the others'; None when there is none or
        it is unreadable (as `pods` leaves it out)."""
        try:
            return self.store.get(namespace, name)
        except SandboxError:
            return None

    # ---- GC, status -----------------------------------------------------------------

    def valid_attachments(self) -> list[GCAttachment]:
        """Attachments in use: ready sandboxes whose netns still exists. A sandbox whose
        netns vanished (a reboot, a stray `ip netns del`) has no network to keep."""
        return [
            GCAttachment(s.id, s.ifname)
            for s in self.store.all()
            if s.state == READY and is_netns(s.netns)
        ]

    def gc(self) -> list[GCReport]:
        """GC every configured network, then DEL cached attachments of networks no
        config names any more; sandboxes whose attachment was reclaimed become stopped."""
        with self.store.lock(exclusive=True):
            scan = self.scan(report=False)
            valid = self.valid_attachments()
            networks: dict[str, NetworkConfigList] = {}
            for network in scan.networks:
                networks.setdefault(network.name, network)  # the first file of a name wins
            reports = [self.cni.gc(network, valid) for network in networks.values()]
            orphans = self._gc_unconfigured(set(networks), set(valid))
            if orphans.deleted or orphans.errors:
                reports.append(orphans)
            reclaimed = {a for r in reports for a in r.deleted}
            for sandbox in self.store.all():
                if sandbox.state == READY and GCAttachment(sandbox.id, sandbox.ifname) in reclaimed:
                    try:
                        delete_netns(sandbox.netns)  # a leftover file of a dead netns
                    except OSError:
                        pass
                    self.store.save(replace(sandbox, state=STOPPED))
            return reports

    def _gc_unconfigured(self, configured: set[str], valid: set[GCAttachment]) -> GCReport:
        report = GCReport("(networks without a config)")
        for attachment in self.cni.cache.attachments():
            key = GCAttachment(attachment.container_id, attachment.ifname)
            if attachment.network_name in configured or key in valid:
                continue
            try:
                if network_of(attachment, None).disable_gc:
                    continue
                self.cni.delete_attachment(attachment)
                report.deleted.append(key)
            except CNIError as exc:
                report.errors.append(
                    CNIError(
                        f"failed to delete stale attachment {key.container_id} "
                        f'{key.ifname} of network "{attachment.network_name}": {exc}',
                        code=exc.code,
                    )
                )
        return report

    def status(self) -> StatusReport:
        scan = self.scan(report=False)
        report = StatusReport(warnings=scan.warnings())
        try:
            report.network = scan.default()
            self.cni.validate(report.network)
            report.statuses = self.cni.status(report.network)
        except CNIError as exc:
            report.error = exc
        return report
