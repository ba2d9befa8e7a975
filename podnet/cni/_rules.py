"""Rules for reading what a runtime hands a plugin (and a plugin hands back), each written
once with one policy, so that every plugin, the delegation and the runtime answer the same
input the same way.

- `is_int` (in _values): a JSON integer; true and false are not 1 and 0.
- `prev_result`: prevResult absent -> None; present but not a readable result ->
  DecodingFailure (code 6, "failed to parse prevResult: ..."). A verb that can do without
  it (DEL) catches that; one that needs it (CHECK) refuses its absence itself.
- `valid_attachments`: GC's cni.dev/valid-attachments (or the legacy cni.dev/attachments)
  as (containerID, ifname) pairs. Absent -> InvalidConfig: without the list every
  attachment would look stale, so GC refuses rather than wipes. null -> none (Go encodes a
  nil slice so). Anything but a list of {containerID, ifname} strings -> DecodingFailure.
- `fixup_result_version`: a result printed without cniVersion is in the version of the
  config it answers (libcni's fixupResultVersion).
- `parse_route`: one of ipam.routes, as libcni's types.Route reads it: dst a CIDR (host
  bits kept, as types.IPNet keeps them), gw an address of dst's family or absent, and the
  1.1.0 integer fields. A dst or gw that is no CIDR or address (of whatever type) ->
  InvalidConfig; a route that is no object, or an integer field that is no integer ->
  DecodingFailure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from podnet._record import FrozenRecord
from podnet.cni._errors import CNIError, DecodingFailure, InvalidConfig
from podnet.cni._result import Result, Route
from podnet.cni._values import is_int
from podnet.ipam import IPAddress, parse_cidr, parse_ip

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

VALID_ATTACHMENTS_KEY = "cni.dev/valid-attachments"
LEGACY_ATTACHMENTS_KEY = "cni.dev/attachments"  # before CNI 1.1.0's name
ROUTE_INT_FIELDS = ("mtu", "advmss", "priority", "table", "scope")


def prev_result(config: Mapping[str, Any]) -> Result | None:
    raw = config.get("prevResult")
    if raw is None:
        return None
    try:
        return Result.from_json(raw)
    except CNIError as exc:
        raise DecodingFailure(f"failed to parse prevResult: {exc.msg}") from None


def valid_attachments(config: Mapping[str, Any]) -> set[tuple[str, str]]:
    key = next((k for k in (VALID_ATTACHMENTS_KEY, LEGACY_ATTACHMENTS_KEY) if k in config), None)
    if key is None:
        raise InvalidConfig(f"GC needs {VALID_ATTACHMENTS_KEY} in the config")
    raw = config[key]
    if raw is None:
        return set()
    if not isinstance(raw, list):
        raise DecodingFailure(f"{key} must be a list")
    valid = set()
    for item in raw:
        if not isinstance(item, dict):
            raise DecodingFailure(f"{key}: an attachment must be an object")
        container_id, ifname = item.get("containerID"), item.get("ifname")
        if not isinstance(container_id, str) or not isinstance(ifname, str):
            raise DecodingFailure(f"{key}: containerID and ifname must be strings")
        valid.add((container_id.strip(), ifname))
    return valid


def fixup_result_version(raw: dict[str, Any], version: str) -> dict[str, Any]:
    return raw if raw.get("cniVersion") else {**raw, "cniVersion": version}


class RouteConf(FrozenRecord):
    """One route of a plugin's config, as written."""

    __slots__ = ("dst", "gw", "ints")

    def __init__(
        self,
        dst: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
        gw: IPAddress | None = None,
        ints: dict[str, int] | None = None,
    ) -> None:
        self.dst: Final = dst  # host bits kept
        self.gw: Final = gw
        self.ints: Final[dict[str, int]] = (
            {} if ints is None else ints
        )  # the ROUTE_INT_FIELDS given; never mutated

    def route(self) -> Route:
        """As a result's route: dst is the network."""
        return Route(
            dst=self.dst.network,
            gw=self.gw,
            mtu=self.ints.get("mtu", 0),
            advmss=self.ints.get("advmss", 0),
            priority=self.ints.get("priority", 0),
            table=self.ints.get("table"),
            scope=self.ints.get("scope"),
        )

    def to_json(self) -> dict[str, Any]:
        """As libcni re-encodes a types.Route: dst as written, zero integers left out."""
        out: dict[str, Any] = {"dst": str(self.dst)}
        if self.gw is not None:
            out["gw"] = str(self.gw)
        out.update((key, value) for key, value in self.ints.items() if value)
        return out


def parse_route(raw: Any, what: str) -> RouteConf:
    """`raw` is the route called `what` in messages (e.g. "ipam.routes[0]")."""
    if not isinstance(raw, dict):
        raise DecodingFailure(f"{what}: a route must be an object")
    dst_text = raw.get("dst")
    try:
        address, prefix = parse_cidr(dst_text if isinstance(dst_text, str) else "")
    except ValueError:
        raise InvalidConfig(f"{what}.dst: invalid CIDR address: {dst_text}") from None
    dst = ipaddress.ip_interface((address, prefix))
    gw = None
    gw_text = raw.get("gw")
    if gw_text not in (None, ""):
        try:
            gw = parse_ip(gw_text if isinstance(gw_text, str) else "")
        except ValueError:
            raise InvalidConfig(f"{what}.gw: invalid IP address: {gw_text}") from None
        if gw.version != dst.version:
            raise InvalidConfig(f"{what}: gw {gw} and dst {dst} are of different families")
    ints = {}
    for key in ROUTE_INT_FIELDS:
        value = raw.get(key)
        if value is None:
            continue
        if not is_int(value):
            raise DecodingFailure(f"{what}.{key} must be an integer")
        ints[key] = value
    return RouteConf(dst=dst, gw=gw, ints=ints)
