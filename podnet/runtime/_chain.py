"""Running a network config list, libcni's CNIConfig: ADD, CHECK, DEL, GC, STATUS and
validation over an injected Exec, with the result cache.

Where podnet differs from libcni, on purpose:
- DEL gives every plugin its turn and reports all failures together; libcni stops at the
  first failing plugin, so the plugins before it in the list (the IPAM-owning bridge,
  typically) never release their IP: the documented root of chained-plugin leaks.
- ADD that fails undoes itself: DEL for the failed plugin and those before it, in reverse
  (libcni leaves that to its caller). If that undo fails too, the attachment is written
  to the cache anyway, so GC finds it and retries the DEL later.
- Every plugin binary is looked up before the first ADD, so a missing one costs nothing.
- DEL and CHECK of a cached attachment during GC use the config the ADD ran with (kept in
  the cache) when it still parses; libcni uses the caller's current list.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podnet.cni import (
    LEGACY_ATTACHMENTS_KEY,
    VALID_ATTACHMENTS_KEY,
    CNIError,
    Exec,
    IncompatibleVersion,
    InternalError,
    Result,
    UnknownContainer,
    at_least,
    decode_result,
    fixup_result_version,
    validate_container_id,
    validate_ifname,
    validate_network_name,
)
from podnet.netlink import is_netns
from podnet.runtime._cache import CachedAttachment, ResultCache
from podnet.runtime._conf import NetworkConfigList, conflist_from_bytes
from podnet.runtime._errors import ConfError, PluginErrors, PluginFailed
from podnet.runtime._exec import ProcessExec, cni_env, supported_versions
from podnet.runtime._types import GCAttachment, RuntimeConf

DEFAULT_CACHE_DIR = "/var/lib/cni"
DEFAULT_BIN_DIR = "/opt/cni/bin"  # where a node keeps its CNI plugins
DEFAULT_BIN_DIRS = (DEFAULT_BIN_DIR,)


def plugin_config(
    network: NetworkConfigList,
    plugin: dict[str, Any],
    *,
    prev_result: dict[str, Any] | None = None,
    rt: RuntimeConf | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What one plugin reads on stdin: its own object with the list's name and version,
    the previous result, and `runtimeConfig` holding the capability args it declared."""
    config = copy.deepcopy(plugin)
    config["name"] = network.name
    config["cniVersion"] = network.cni_version
    if prev_result is not None:
        config["prevResult"] = prev_result
    if rt is not None:
        declared = plugin.get("capabilities") or {}
        runtime_config = {
            name: rt.capability_args[name]
            for name, enabled in declared.items()
            if enabled is True and name in rt.capability_args
        }
        if runtime_config:
            config["runtimeConfig"] = runtime_config
    if extra:
        config.update(extra)
    return config


def in_version(raw: dict[str, Any], version: str) -> dict[str, Any]:
    """A result as the list's version expects it (one without cniVersion is in the
    config's version: podnet.cni's fixup_result_version)."""
    raw = fixup_result_version(raw, version)
    result = Result.from_json(raw)  # also validates what a plugin printed
    return raw if raw["cniVersion"] == version else result.to_json(version)


def network_of(
    attachment: CachedAttachment, current: NetworkConfigList | None
) -> NetworkConfigList:
    """The list to DEL a cached attachment with: the config its ADD ran with, or
    `current` (the configured list of that name) when that is the same or the cached
    one is unusable."""
    if current is not None and (not attachment.config or attachment.config == current.raw):
        return current
    try:
        cached = conflist_from_bytes(attachment.config)
        if cached.name == attachment.network_name:
            return cached
    except ConfError:
        pass
    if current is not None:
        return current
    raise InternalError(
        f"cannot DEL {attachment.container_id} {attachment.ifname}: its cached config "
        f'of network "{attachment.network_name}" is unusable and no such network is configured'
    )


@dataclass
class GCReport:
    """What GC did for one network."""

    network: str
    deleted: list[GCAttachment] = field(default_factory=list)
    errors: list[CNIError] = field(default_factory=list)
    gc_sent: bool = False
    skipped: str = ""


@dataclass(frozen=True)
class PluginStatus:
    plugin_type: str
    error: CNIError | None = None


class CNI:
    """The libcni side of a runtime: plugins found in `paths`, results cached under
    `cache_dir`, processes run by `exec_`."""

    def __init__(
        self,
        paths: Sequence[str] = DEFAULT_BIN_DIRS,
        *,
        cache_dir: str = DEFAULT_CACHE_DIR,
        exec_: Exec | None = None,
    ) -> None:
        self.paths = tuple(paths)
        self.cache = ResultCache(cache_dir)
        self.exec = exec_ if exec_ is not None else ProcessExec()

    # ---- one plugin -----------------------------------------------------------------

    def _invoke(
        self,
        command: str,
        network: NetworkConfigList,
        plugin: dict[str, Any],
        rt: RuntimeConf | None,
        *,
        prev_result: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        executable: str | None = None,
    ) -> bytes:
        plugin_type = str(plugin["type"])
        verb = {"DEL": "delete"}.get(command, command.lower())
        try:
            if executable is None:
                executable = self.exec.find_in_path(plugin_type, self.paths)
            config = plugin_config(network, plugin, prev_result=prev_result, rt=rt, extra=extra)
            stdin = json.dumps(config).encode()
            return self.exec.exec_plugin(executable, cni_env(command, rt, self.paths), stdin)
        except CNIError as exc:
            raise PluginFailed(plugin_type, verb, exc) from exc

    # ---- ADD ------------------------------------------------------------------------

    def add(self, network: NetworkConfigList, rt: RuntimeConf) -> Result:
        """Run ADD through the list; cache and return the final result. On failure the
        plugins run so far get their DEL and the error names the failing plugin."""
        validate_container_id(rt.container_id)
        validate_network_name(network.name)
        validate_ifname(rt.ifname)
        executables = []
        for plugin_type in network.plugin_types:
            try:
                executables.append(self.exec.find_in_path(plugin_type, self.paths))
            except CNIError as exc:
                raise PluginFailed(plugin_type, "add", exc) from exc
        prev: dict[str, Any] | None = None
        pairs = zip(network.plugins, executables, strict=True)
        for index, (plugin, executable) in enumerate(pairs):
            try:
                stdout = self._invoke(
                    "ADD", network, plugin, rt, prev_result=prev, executable=executable
                )
                try:
                    prev = in_version(decode_result(stdout), network.cni_version)
                except CNIError as exc:
                    raise PluginFailed(str(plugin["type"]), "add", exc) from exc
            except PluginFailed as failure:
                self._undo(network, rt, index, prev, failure)
                raise
        assert prev is not None
        attachment = self._attachment(network, rt, prev)
        try:
            self.cache.write(attachment)
        except CNIError as exc:
            self._undo(network, rt, len(network.plugins) - 1, prev, exc)
            raise
        return Result.from_json(prev)

    def _attachment(
        self, network: NetworkConfigList, rt: RuntimeConf, result: dict[str, Any] | None
    ) -> CachedAttachment:
        return CachedAttachment(
            container_id=rt.container_id,
            ifname=rt.ifname,
            network_name=network.name,
            config=network.raw,
            netns=rt.netns,
            cni_args=rt.args,
            capability_args=dict(rt.capability_args),
            result=result,
        )

    def _undo(
        self,
        network: NetworkConfigList,
        rt: RuntimeConf,
        failed_index: int,
        prev: dict[str, Any] | None,
        failure: CNIError,
    ) -> None:
        """DEL for plugins[failed_index] back to plugins[0]: the failed one may have
        half-done its work. If any of these fail, raise both failures and keep the
        attachment in the cache so GC retries the DEL."""
        prev_result = prev if at_least(network.cni_version, "0.4.0") else None
        errors: list[CNIError] = []
        for plugin in reversed(network.plugins[: failed_index + 1]):
            try:
                self._invoke("DEL", network, plugin, rt, prev_result=prev_result)
            except CNIError as exc:
                errors.append(exc)
        if not errors:
            return
        try:
            self.cache.write(self._attachment(network, rt, prev))
            note = "attachment kept in the cache for GC"
        except CNIError as exc:
            note = f"and it could not be cached for GC: {exc}"
        raise PluginErrors([failure, *errors], context=f"ADD failed and undoing it failed, {note}")

    # ---- cached results -------------------------------------------------------------

    def cached_attachment(self, network_name: str, rt: RuntimeConf) -> CachedAttachment | None:
        return self.cache.read(network_name, rt.container_id, rt.ifname)

    def cached_result(self, network: NetworkConfigList, rt: RuntimeConf) -> dict[str, Any] | None:
        """The cached final result of ADD, in the list's version; None if not cached."""
        cached = self.cached_attachment(network.name, rt)
        if cached is None or cached.result is None:
            return None
        return in_version(cached.result, network.cni_version)

    # ---- CHECK ----------------------------------------------------------------------

    def check(self, network: NetworkConfigList, rt: RuntimeConf) -> None:
        """CHECK through the list with the cached result; stops at the first failure."""
        if not at_least(network.cni_version, "0.4.0"):
            raise IncompatibleVersion(
                f'configuration version "{network.cni_version}" does not support the CHECK command'
            )
        if network.disable_check:
            return
        cached = self.cached_result(network, rt)
        if cached is None:
            raise UnknownContainer(
                f'no cached result for network "{network.name}", container '
                f"{rt.container_id}, interface {rt.ifname}"
            )
        for plugin in network.plugins:
            self._invoke("CHECK", network, plugin, rt, prev_result=cached)

    # ---- DEL ------------------------------------------------------------------------

    def delete(self, network: NetworkConfigList, rt: RuntimeConf) -> None:
        """DEL through the list in reverse, each plugin with the cached result. Every
        plugin gets its DEL; failures are raised together and keep the cache entry."""
        prev: dict[str, Any] | None = None
        if at_least(network.cni_version, "0.4.0"):
            try:
                prev = self.cached_result(network, rt)
            except CNIError:
                prev = None  # an unreadable entry must not block DEL (plugins accept none)
        errors: list[CNIError] = []
        for plugin in reversed(network.plugins):
            try:
                self._invoke("DEL", network, plugin, rt, prev_result=prev)
            except CNIError as exc:
                errors.append(exc)
        if errors:
            raise PluginErrors(errors)
        self.cache.delete(network.name, rt.container_id, rt.ifname)

    def delete_attachment(
        self, attachment: CachedAttachment, current: NetworkConfigList | None = None
    ) -> None:
        """A full DEL of a cached attachment with what it was added with: its cached
        config (or `current` when that is the same list), netns, CNI_ARGS and capability
        args. A netns that no longer exists is passed as empty, as containerd does."""
        network = network_of(attachment, current)
        netns = attachment.netns if attachment.netns and is_netns(attachment.netns) else ""
        self.delete(network, attachment.runtime_conf(netns=netns))

    # ---- GC -------------------------------------------------------------------------

    def gc(
        self,
        network: NetworkConfigList,
        valid: Iterable[GCAttachment],
        *,
        owned: Callable[[CachedAttachment], bool] | None = None,
    ) -> GCReport:
        """Remove what the runtime no longer uses: a full DEL for every cached attachment
        of this network not in `valid`, then (>= 1.1.0) the GC verb to every plugin with
        the valid attachments. `disableGC` turns all of it off, as in libcni: the cache
        dir may be shared with another runtime whose pods we cannot see. `owned`, when
        given, narrows the DELs to the cache entries it accepts (a caller that shares the
        cache dir with others that use the same network name)."""
        report = GCReport(network.name)
        if network.disable_gc:
            report.skipped = "disableGC is set"
            return report
        keep = list(dict.fromkeys(valid))
        keep_set = set(keep)
        for attachment in self.cache.attachments():
            if attachment.network_name != network.name:
                continue
            key = GCAttachment(attachment.container_id, attachment.ifname)
            if key in keep_set or (owned is not None and not owned(attachment)):
                continue
            try:
                self.delete_attachment(attachment, network)
                report.deleted.append(key)
            except CNIError as exc:
                report.errors.append(
                    CNIError(
                        f"failed to delete stale attachment {key.container_id} {key.ifname}: {exc}",
                        code=exc.code,
                    )
                )
        if at_least(network.cni_version, "1.1.0"):
            report.errors += self.gc_verb(network, keep)
            report.gc_sent = True
        return report

    def gc_verb(self, network: NetworkConfigList, valid: Sequence[GCAttachment]) -> list[CNIError]:
        """Only the GC verb, to every plugin of the list with the valid attachments
        (under the spec's key and the name it had before); returns the failures."""
        listed = [a.to_json() for a in valid]
        extra = {VALID_ATTACHMENTS_KEY: listed, LEGACY_ATTACHMENTS_KEY: listed}
        errors = []
        for plugin in network.plugins:
            try:
                self._invoke("GC", network, plugin, None, extra=extra)
            except CNIError as exc:
                errors.append(exc)
        return errors

    # ---- STATUS and validation ------------------------------------------------------

    def status(self, network: NetworkConfigList) -> list[PluginStatus]:
        """STATUS of every plugin (an empty list before 1.1.0, which has no STATUS)."""
        if not at_least(network.cni_version, "1.1.0"):
            return []
        statuses = []
        for plugin in network.plugins:
            try:
                self._invoke("STATUS", network, plugin, None)
                statuses.append(PluginStatus(str(plugin["type"])))
            except CNIError as exc:
                statuses.append(PluginStatus(str(plugin["type"]), exc))
        return statuses

    def validate(self, network: NetworkConfigList) -> tuple[str, ...]:
        """Every plugin exists and its VERSION lists the list's version; returns the
        capabilities the list declares. All problems are raised together."""
        errors: list[CNIError] = []
        capabilities: set[str] = set()
        for plugin in network.plugins:
            plugin_type = str(plugin["type"])
            capabilities.update(k for k, v in (plugin.get("capabilities") or {}).items() if v)
            try:
                executable = self.exec.find_in_path(plugin_type, self.paths)
                versions = supported_versions(self.exec, executable)
            except CNIError as exc:
                errors.append(PluginFailed(plugin_type, "version", exc))
                continue
            if network.cni_version not in versions:
                errors.append(
                    IncompatibleVersion(
                        f'plugin {plugin_type} does not support config version "'
                        f'{network.cni_version}"',
                        f"it supports {', '.join(versions)}",
                    )
                )
        if errors:
            raise PluginErrors(errors)
        return tuple(sorted(capabilities))
