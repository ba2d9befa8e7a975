"""host-local's configuration, read from the request as the reference reads it
(plugins/ipam/host-local/backend/allocator/config.go), and checked completely before
anything touches the disk: a bad request never leaves a trace in the data dir.

Where the sets come from, in order: runtimeConfig.ipRanges (the `ipRanges` capability),
the legacy top-level ipam.subnet/rangeStart/rangeEnd/gateway, then ipam.ranges.
Requested addresses: CNI_ARGS `IP=`, then args.cni.ips, then runtimeConfig.ips; each goes
to the first set that contains it, at most one per set.

Error codes: a value of the wrong JSON type is a decoding failure (6); a value that
parses but cannot be used is an invalid config (7); a bad CNI_ARGS is an invalid
environment (4); more than one address per family below 0.3.0 is an incompatible
version (1). The reference answers all of these with 999.
"""

from __future__ import annotations

from podnet._record import FrozenRecord
from podnet.cni import (
    DecodingFailure,
    IncompatibleVersion,
    InvalidConfig,
    InvalidEnvironment,
    Request,
    Route,
    at_least,
    is_int,
    parse_route,
)
from podnet.ipam import (
    IPAddress,
    IPAMError,
    Range,
    RangeSet,
    canonical_range,
    check_disjoint,
    parse_cidr,
    parse_ip,
    range_set,
)

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

DEFAULT_DATA_DIR = "/var/lib/cni/networks"


class HostLocalConfig(FrozenRecord):
    __slots__ = (
        "network",
        "cni_version",
        "data_dir",
        "range_sets",
        "requested",
        "routes",
        "resolv_conf",
    )

    def __init__(
        self,
        network: str,
        cni_version: str,
        data_dir: str,
        range_sets: tuple[RangeSet, ...],
        requested: tuple[IPAddress | None, ...],
        routes: tuple[Route, ...],
        resolv_conf: str,
    ) -> None:
        self.network: Final = network
        self.cni_version: Final = cni_version
        self.data_dir: Final = data_dir
        self.range_sets: Final = range_sets
        # one requested address (or None) per range set
        self.requested: Final = requested
        self.routes: Final = routes
        self.resolv_conf: Final = resolv_conf


def load_config(request: Request) -> HostLocalConfig:
    config = request.config
    ipam = config.get("ipam")
    if ipam is None:
        raise InvalidConfig("IPAM config missing 'ipam' key")
    _expect(ipam, dict, "ipam")
    runtime = config.get("runtimeConfig") or {}
    _expect(runtime, dict, "runtimeConfig")

    sets = _range_sets(ipam, runtime)
    if len(sets) == 0:
        raise InvalidConfig("no IP ranges specified")
    version = request.cni_version
    families = [s.version for s in sets]
    if max(families.count(4), families.count(6)) > 1 and not at_least(version, "0.3.0"):
        raise IncompatibleVersion(
            f"CNI version {version} does not support more than 1 address per family"
        )
    try:
        check_disjoint(sets)
    except IPAMError as exc:
        raise InvalidConfig(str(exc)) from None

    return HostLocalConfig(
        network=request.network_name,
        cni_version=version,
        data_dir=_optional_str(ipam, "dataDir", "ipam") or DEFAULT_DATA_DIR,
        range_sets=tuple(sets),
        requested=_assign_requested(sets, _requested_ips(request, config, runtime)),
        routes=tuple(_route(r, i) for i, r in enumerate(_list(ipam.get("routes"), "ipam.routes"))),
        resolv_conf=_optional_str(ipam, "resolvConf", "ipam"),
    )


# ---- range sets --------------------------------------------------------------------


def _range_sets(ipam: dict[str, Any], runtime: dict[str, Any]) -> list[RangeSet]:
    raw_sets: list[Any] = list(_list(runtime.get("ipRanges"), "runtimeConfig.ipRanges"))
    if ipam.get("subnet") not in (None, ""):
        legacy = {k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}
        raw_sets.append([legacy])
    raw_sets.extend(_list(ipam.get("ranges"), "ipam.ranges"))
    sets = []
    for index, raw in enumerate(raw_sets):
        what = f"range set {index}"
        ranges = [_range(item, f"{what} range {i}") for i, item in enumerate(_list(raw, what))]
        try:
            sets.append(range_set([_canonical(r, index) for r in ranges]))
        except IPAMError as exc:
            raise InvalidConfig(f"invalid range set {index}: {exc}") from None
    return sets


def _range(item: Any, what: str) -> dict[str, str]:
    _expect(item, dict, what)
    out = {}
    for key in ("subnet", "rangeStart", "rangeEnd", "gateway"):
        value = _optional_str(item, key, what)
        if value:
            out[key] = value
    return out


def _canonical(raw: dict[str, str], index: int) -> Range:
    if "subnet" not in raw:
        raise IPAMError("subnet is missing")
    try:
        subnet = parse_cidr(raw["subnet"])
    except ValueError:
        raise IPAMError(f"invalid CIDR address: {raw['subnet']}") from None
    addresses: dict[str, IPAddress | None] = {}
    for key in ("rangeStart", "rangeEnd", "gateway"):
        text = raw.get(key)
        try:
            addresses[key] = parse_ip(text) if text else None
        except ValueError:
            raise IPAMError(f"{key}: invalid IP address: {text}") from None
    return canonical_range(
        subnet,
        start=addresses["rangeStart"],
        end=addresses["rangeEnd"],
        gateway=addresses["gateway"],
    )


# ---- requested addresses -----------------------------------------------------------


def _requested_ips(
    request: Request, config: dict[str, Any], runtime: dict[str, Any]
) -> list[IPAddress]:
    wanted = []
    env_ip = _cni_args_ip(request)
    if env_ip is not None:
        wanted.append(env_ip)
    args = config.get("args")
    if args is not None:
        _expect(args, dict, "args")
        cni = args.get("cni")
        if cni is not None:
            _expect(cni, dict, "args.cni")
            wanted.extend(_ip_list(cni.get("ips"), "args.cni.ips"))
    wanted.extend(_ip_list(runtime.get("ips"), "runtimeConfig.ips"))
    unique: list[IPAddress] = []
    for address in wanted:
        if address not in unique:
            unique.append(address)
    return unique


def _cni_args_ip(request: Request) -> IPAddress | None:
    """IP= from CNI_ARGS. As the reference's types.LoadArgs: any other key is an error
    unless IgnoreUnknown is true (containerd and CRI-O always set it)."""
    args = request.cni_args()
    ignore = args.get("IgnoreUnknown", "false").lower()
    if ignore not in ("1", "true", "0", "false"):
        raise InvalidEnvironment(
            f'ARGS: error parsing value of pair "IgnoreUnknown={args["IgnoreUnknown"]}": '
            f"boolean unmarshal error: invalid input {ignore}"
        )
    unknown = [f"{k}={v}" for k, v in args.items() if k not in ("IP", "IgnoreUnknown")]
    if unknown and ignore not in ("1", "true"):
        raise InvalidEnvironment("ARGS: unknown args [" + " ".join(f'"{u}"' for u in unknown) + "]")
    text = args.get("IP", "")
    if not text:
        return None
    try:
        return _ip_with_optional_prefix(text)
    except ValueError:
        raise InvalidEnvironment(
            f'ARGS: error parsing value of pair "IP={text}": invalid IP address {text}'
        ) from None


def _ip_list(value: Any, what: str) -> list[IPAddress]:
    out = []
    for item in _list(value, what):
        _expect(item, str, what)
        try:
            out.append(_ip_with_optional_prefix(item))
        except ValueError:
            raise InvalidConfig(f"{what}: invalid IP address {item}") from None
    return out


def _ip_with_optional_prefix(text: str) -> IPAddress:
    """'10.1.2.9' or '10.1.2.9/24': the address (a prefix is allowed and ignored)."""
    if "/" in text:
        return parse_cidr(text)[0]
    return parse_ip(text)


def _assign_requested(
    sets: list[RangeSet], wanted: list[IPAddress]
) -> tuple[IPAddress | None, ...]:
    """The requested address of each set; every request must land in a set, and none
    may be a gateway. Checked here so that a bad request never touches the disk."""
    remaining = list(wanted)
    assigned: list[IPAddress | None] = []
    for index, rangeset in enumerate(sets):
        mine = next((a for a in remaining if rangeset.contains(a)), None)
        if mine is not None:
            remaining.remove(mine)
            owner = rangeset.range_for(mine)
            if owner is not None and mine == owner.gateway:
                raise InvalidConfig(
                    f"failed to allocate for range {index}: requested ip {mine} is subnet's gateway"
                )
        assigned.append(mine)
    if remaining:
        raise InvalidConfig(
            "failed to allocate all requested IPs: " + " ".join(str(a) for a in remaining)
        )
    return tuple(assigned)


# ---- routes and small readers ------------------------------------------------------


def _route(raw: Any, index: int) -> Route:
    return parse_route(raw, f"ipam.routes[{index}]").route()


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def _expect(value: Any, kind: type, what: str) -> None:
    if not (is_int(value) if kind is int else isinstance(value, kind)):
        raise DecodingFailure(f"{what} must be {_TYPE_NAMES[kind]}, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    _expect(value, list, what)
    return list(value)


def _optional_str(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    _expect(value, str, f"{what}.{key}")
    return str(value)
