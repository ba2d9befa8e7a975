"""The flannel plugin's configuration and the delegate config it renders from subnet.env,
exactly as the reference (flannel-io/cni-plugin flannel.go cmdAdd, flannel_linux.go
doCmdAdd and getDelegateIPAM):

- `delegate` may not carry `name` or `ipam` (flannel sets them), and its `type`, when
  given, must be a string; runtimeConfig is copied into it;
- name = the network's name; type defaults to bridge; ipMasq to !FLANNEL_IPMASQ (masquerade
  in the bridge only when the agent does not); mtu to FLANNEL_MTU; isGateway to true for
  bridge; cniVersion copied when the config has one;
- ipam starts from the config's `ipam` (other keys pass through, e.g. dataDir); type
  defaults to host-local; ranges = one set for FLANNEL_SUBNET then one for
  FLANNEL_IPV6_SUBNET (their network addresses); routes = ipam.routes followed by one route
  per cluster network, IPv4 then IPv6.

The rendered config is encoded as Go's encoding/json writes a map (keys sorted, compact,
<, > and & escaped), so the scratch file is byte for byte what the reference saves.
"""

from __future__ import annotations

from podnet import _json as json
from podnet._record import FrozenRecord
from podnet.cni import DecodingFailure, InvalidConfig, Request, parse_route
from podnet.plugins.meta.flannel._subnet_env import SubnetEnv

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env"
DEFAULT_DATA_DIR = "/var/lib/cni/flannel"


class FlannelConfig(FrozenRecord):
    __slots__ = (
        "name",
        "cni_version",
        "subnet_file",
        "data_dir",
        "delegate",
        "ipam",
        "runtime_config",
    )

    def __init__(
        self,
        name: str,
        cni_version: str,
        subnet_file: str,
        data_dir: str,
        delegate: dict[str, Any],
        ipam: dict[str, Any] | None,
        runtime_config: dict[str, Any] | None,
    ) -> None:
        self.name: Final = name
        self.cni_version: Final = cni_version  # as written; "" when the config has none
        self.subnet_file: Final = subnet_file
        self.data_dir: Final = data_dir
        self.delegate: Final = delegate
        self.ipam: Final = ipam
        self.runtime_config: Final = runtime_config


def load_flannel_config(request: Request) -> FlannelConfig:
    config = request.config
    version = config.get("cniVersion", "")
    return FlannelConfig(
        name=request.network_name,
        cni_version=version if isinstance(version, str) else "",
        subnet_file=_string(config, "subnetFile") or DEFAULT_SUBNET_FILE,
        data_dir=_string(config, "dataDir") or DEFAULT_DATA_DIR,
        delegate=dict(_object(config, "delegate") or {}),
        ipam=_object(config, "ipam"),
        runtime_config=_object(config, "runtimeConfig"),
    )


def build_delegate(conf: FlannelConfig, env: SubnetEnv) -> dict[str, Any]:
    """The config flannel hands to its delegate; InvalidConfig when `delegate` tries to
    set what flannel owns."""
    delegate: dict[str, Any] = json.loads(json.dumps(conf.delegate))  # a private deep copy
    if "type" in delegate and not isinstance(delegate["type"], str):
        raise InvalidConfig("'delegate' dictionary, if present, must have (string) 'type' field")
    for owned in ("name", "ipam"):
        if owned in delegate:
            raise InvalidConfig(
                f"'delegate' dictionary must not have '{owned}' field, it'll be set by flannel"
            )
    if conf.runtime_config is not None:
        delegate["runtimeConfig"] = conf.runtime_config
    delegate["name"] = conf.name
    delegate.setdefault("type", "bridge")
    delegate.setdefault("ipMasq", not env.ipmasq)
    delegate.setdefault("mtu", env.mtu)
    if delegate["type"] == "bridge":
        delegate.setdefault("isGateway", True)
    if conf.cni_version:
        delegate["cniVersion"] = conf.cni_version
    delegate["ipam"] = _delegate_ipam(conf, env)
    return delegate


def _delegate_ipam(conf: FlannelConfig, env: SubnetEnv) -> dict[str, Any]:
    ipam: dict[str, Any] = json.loads(json.dumps(conf.ipam or {}))
    ipam.setdefault("type", "host-local")
    ipam["ranges"] = [
        [{"subnet": str(subnet)}] for subnet in (env.subnet, env.ipv6_subnet) if subnet is not None
    ]
    routes = [_route(raw, i) for i, raw in enumerate(_list(ipam.get("routes"), "ipam.routes"))]
    routes.extend({"dst": str(network)} for network in (*env.networks, *env.ipv6_networks))
    ipam["routes"] = routes
    return ipam


def _route(raw: Any, index: int) -> dict[str, Any]:
    """One of ipam.routes, re-encoded as libcni's types.Route: dst, gw and the 1.1.0
    integer fields are kept, anything else is dropped."""
    what = f"failed to read IPAM routes: ipam.routes[{index}]"
    return parse_route(raw, what).to_json()


def go_json(obj: Any) -> bytes:
    """`obj` encoded as Go's json.Marshal encodes a map[string]interface{}."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        # A lone surrogate ("\\ud800" in the config's JSON) has no UTF-8 form.
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise DecodingFailure(f"the config holds a lone surrogate ({bad}), not text") from None


def _string(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodingFailure(f"failed to load netconf: {key} must be a string")
    return value


def _object(config: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise DecodingFailure(f"failed to load netconf: {key} must be an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodingFailure(f"failed to read IPAM routes: {what} must be a list")
    return value
