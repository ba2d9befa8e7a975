"""Network config lists and how a runtime finds them in a conf dir.

Parsing follows libcni (libcni/conf.go): a list has a name, a cniVersion (negotiated with
`cniVersions`), `disableCheck`/`disableGC` (booleans, or the strings "true"/"false"), and
a non-empty `plugins` list whose entries each have a `type`. Unless
`loadOnlyInlinedPlugins` is set, plugin objects from `<conf dir>/<network name>/*.conf`
are appended. A single-plugin `.conf`/`.json` file is up-converted to a list of one.

Discovery follows containerd (go-cni `loadFromConfDir`): `*.conf`, `*.conflist` and
`*.json`, sorted lexically; the first file is the default network. containerd loads only
that one, which is how a leftover `10-containerd-net.conflist` silently beats
`10-flannel.conflist`. So `ConfScan.warnings` says, every time, which file wins and which
are ignored, and names every invalid file with its reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from podnet.cni import CNIError, negotiate, validate_network_name
from podnet.runtime._errors import ConfError, NoNetworkConfig

CONF_EXTENSIONS = (".conf", ".conflist", ".json")
MAX_CONF_SIZE = 2 * 1024 * 1024  # go-cni's MaxFileSize


@dataclass(frozen=True)
class NetworkConfigList:
    """A parsed network config list. `plugins` are the plugin objects as written (treat
    them as read-only); `raw` is the list's bytes, which the result cache keeps."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    disable_gc: bool = False
    raw: bytes = b""
    source: str = ""

    @property
    def plugin_types(self) -> tuple[str, ...]:
        return tuple(str(p["type"]) for p in self.plugins)

    def describe(self) -> str:
        where = os.path.basename(self.source) if self.source else "<bytes>"
        return f'{where} (network "{self.name}")'


class _Invalid(Exception):
    """A reason a config is unusable; turned into a ConfError naming the file."""


def _load_json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _Invalid(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"{what} must be a JSON object, not {type(obj).__name__}")
    return obj


def _read_bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _Invalid(f"invalid value {value!r} for {key}: must be a boolean")


def _check_plugin(plugin: Any, where: str) -> dict[str, Any]:
    if not isinstance(plugin, dict):
        raise _Invalid(f"{where} must be a JSON object")
    plugin_type = plugin.get("type")
    if not isinstance(plugin_type, str) or not plugin_type:
        raise _Invalid(f"{where} has no 'type'")
    if "/" in plugin_type or plugin_type in (".", ".."):
        raise _Invalid(f"{where} has an invalid type {plugin_type!r}")
    capabilities = plugin.get("capabilities", {})
    if not isinstance(capabilities, dict) or not all(
        isinstance(v, bool) for v in capabilities.values()
    ):
        raise _Invalid(f"{where}: 'capabilities' must map names to booleans")
    return plugin


def _parse_list(obj: dict[str, Any], raw: bytes, source: str) -> NetworkConfigList:
    name = obj.get("name")
    if name is None:
        raise _Invalid("no network name")
    try:
        validate_network_name(name)
        version = negotiate(obj)
    except CNIError as exc:
        raise _Invalid(str(exc)) from None
    inline_only = _read_bool(obj, "loadOnlyInlinedPlugins")
    plugins: list[dict[str, Any]] = []
    if "plugins" in obj:
        declared = obj["plugins"]
        if not isinstance(declared, list):
            raise _Invalid("'plugins' must be a list")
        if not declared:
            raise _Invalid("no plugins in list")
        plugins = [_check_plugin(p, f"plugin {i}") for i, p in enumerate(declared)]
    elif inline_only:
        raise _Invalid("loadOnlyInlinedPlugins is true and there is no 'plugins' key")
    if not inline_only and source:
        plugins.extend(_plugins_from_subdir(os.path.dirname(source), name))
    if not plugins:
        raise _Invalid("no plugin configs found")
    return NetworkConfigList(
        name=name,
        cni_version=version,
        plugins=tuple(plugins),
        disable_check=_read_bool(obj, "disableCheck"),
        disable_gc=_read_bool(obj, "disableGC"),
        raw=raw,
        source=source,
    )


def _plugins_from_subdir(conf_dir: str, network_name: str) -> list[dict[str, Any]]:
    """Plugin objects aggregated from `<conf dir>/<network name>/*.conf` (libcni)."""
    subdir = os.path.join(conf_dir, network_name)
    try:
        names = sorted(n for n in os.listdir(subdir) if n.endswith(".conf"))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise _Invalid(f"failed to read plugin config files in {subdir}: {exc.strerror}") from None
    plugins = []
    for filename in names:
        path = os.path.join(subdir, filename)
        if os.path.isdir(path):
            continue
        plugins.append(_check_plugin(_load_json_object(_read(path), path), path))
    return plugins


def _read(path: str) -> bytes:
    try:
        if os.path.getsize(path) > MAX_CONF_SIZE:
            raise _Invalid(f"larger than the maximum of {MAX_CONF_SIZE} bytes")
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise _Invalid(f"cannot read it: {exc.strerror}") from None


def conflist_from_bytes(data: bytes, *, source: str = "") -> NetworkConfigList:
    """A network config list from its JSON bytes (`source`: the file, for aggregation
    and messages)."""
    try:
        return _parse_list(_load_json_object(data, "config list"), data, source)
    except _Invalid as exc:
        raise ConfError(source or "<bytes>", str(exc)) from None


def conflist_from_conf(data: bytes, *, source: str = "") -> NetworkConfigList:
    """Up-convert a single-plugin config (.conf/.json) to a list of one, as libcni's
    ConfListFromConf: the list's bytes are the generated list, keys sorted, compact."""
    try:
        plugin = _load_json_object(data, "config")
        if "plugins" in plugin and "type" not in plugin:
            raise _Invalid("network type not found (a config list in a single-plugin file?)")
        _check_plugin(plugin, "config")
        as_list = {
            "cniVersion": plugin.get("cniVersion", ""),
            "name": plugin.get("name"),
            "plugins": [plugin],
        }
        raw = json.dumps(as_list, sort_keys=True, separators=(",", ":")).encode()
        # No subdir aggregation for an up-converted single config.
        return _parse_list(as_list, raw, "")
    except _Invalid as exc:
        raise ConfError(source or "<bytes>", str(exc)) from None


def load_conf_file(path: str) -> NetworkConfigList:
    try:
        data = _read(path)
    except _Invalid as exc:
        raise ConfError(path, str(exc)) from None
    if path.endswith(".conflist"):
        return conflist_from_bytes(data, source=path)
    return replace(conflist_from_conf(data, source=path), source=path)


def conf_files(conf_dir: str) -> list[str]:
    """Candidate files in lexical order; a missing dir has none (libcni ConfFiles)."""
    try:
        names = os.listdir(conf_dir)
    except FileNotFoundError:
        return []
    paths = [os.path.join(conf_dir, n) for n in names if os.path.splitext(n)[1] in CONF_EXTENSIONS]
    return sorted(p for p in paths if not os.path.isdir(p))


@dataclass(frozen=True)
class ConfScan:
    """Everything found in a conf dir: usable networks and invalid files, in file order."""

    conf_dir: str
    files: tuple[str, ...]
    networks: tuple[NetworkConfigList, ...]
    invalid: tuple[ConfError, ...]

    def default(self) -> NetworkConfigList:
        """The default network: the lexically first file, which must be valid (an
        invalid first file is an error, as in containerd, rather than a silent switch
        to the next network)."""
        if not self.files:
            raise NoNetworkConfig(f"no network config found in {self.conf_dir}")
        first = self.files[0]
        for error in self.invalid:
            if error.path == first:
                raise error
        return self.networks[0]

    def by_name(self, name: str) -> NetworkConfigList | None:
        return next((n for n in self.networks if n.name == name), None)

    def warnings(self) -> list[str]:
        out = [str(error) for error in self.invalid if error.path != self.files[0]]
        if len(self.files) > 1 and self.networks and self.networks[0].source == self.files[0]:
            ignored = [os.path.basename(f) for f in self.files[1:]]
            out.append(
                f"{len(self.files)} network configs in {self.conf_dir}: using "
                f"{self.networks[0].describe()} (lexically first); ignored: {', '.join(ignored)}"
            )
        return out


def scan_conf_dir(conf_dir: str) -> ConfScan:
    files = conf_files(conf_dir)
    networks: list[NetworkConfigList] = []
    invalid: list[ConfError] = []
    for path in files:
        try:
            networks.append(load_conf_file(path))
        except ConfError as exc:
            invalid.append(exc)
    return ConfScan(conf_dir, tuple(files), tuple(networks), tuple(invalid))
