"""portmap ADD, CHECK, DEL and GC.

ADD needs prevResult (the pod's addresses) and passes it through; without portMappings it
does nothing else, as the reference. DEL finds the pod's elements by their owner, so it
needs neither prevResult nor the pod's namespace, and a config it cannot read still gets
its elements removed (a DEL that fails keeps the pod from ever being deleted). GC keeps
what the valid attachments of its own network own.
"""

from __future__ import annotations

import ipaddress

from podnet.cni import CNIError, Request, Result, log, prev_result, valid_attachments
from podnet.netlink import NetlinkError, NftError
from podnet.plugins._declared import DeclaredTables
from podnet.plugins.meta.portmap import _table
from podnet.plugins.meta.portmap._config import (
    PortMapConfig,
    parse_config,
    pod_addresses,
)
from podnet.plugins.meta.portmap._localnet import enable_route_localnet
from podnet.plugins.meta.portmap._stale import forget_flows_to_host_ports, forget_flows_to_pods


def _owner(request: Request) -> str:
    return _table.owner_tag(request.network_name, request.container_id, request.ifname)


def _elements(request: Request, config: PortMapConfig, result: Result) -> list[_table.Element]:
    owner = _owner(request)
    out = []
    for address in pod_addresses(request, result):
        out += _table.pod_elements(
            owner, address, config.mappings, snat=config.snat, masq_all=config.masq_all
        )
    return out


def describe(element: _table.Element) -> str:
    """An element as the hostPort a user asked for: "hostPort 192.0.2.1:8080/tcp"."""
    parts = element.key["concat"] if isinstance(element.key, dict) else [element.key]
    where = f"{parts[0]}:" if len(parts) == 3 else ""
    protocol, port = parts[-2:]
    return f"hostPort {where}{port}/{protocol}"


def add(request: Request) -> Result:
    config = parse_config(request)
    result = prev_result(request.config)
    if result is None:
        raise CNIError("must be called as chained plugin")
    if not config.mappings:
        return result
    elements = _elements(request, config, result)
    try:
        declared = request.host.state.get(DeclaredTables)
        _table.add_elements(declared, elements, config.conditions_v4, config.conditions_v6)
    except _table.HostPortTaken as taken:
        details = f"held by {taken.holder}"
        if taken.held is not None:
            details += f" as {describe(taken.held)}"
        raise CNIError(
            f"{describe(taken.element)} is already mapped on this node", details
        ) from None
    except NftError as exc:
        raise CNIError(
            f"unable to set up nftables rules for port mappings: {exc.strerror}"
        ) from exc
    forget_flows_to_host_ports(
        config.mappings, (address.version for address in pod_addresses(request, result))
    )
    if config.snat:
        for address in pod_addresses(request, result):
            if isinstance(address, ipaddress.IPv4Interface):
                try:
                    enable_route_localnet(address.ip)
                except (NetlinkError, OSError) as exc:
                    raise CNIError(f"unable to enable route_localnet: {exc}") from exc
    return result


def check(request: Request) -> None:
    config = parse_config(request)
    result = prev_result(request.config)
    if result is None:
        raise CNIError("Required prevResult missing")
    if not config.mappings:
        return
    try:
        listed = _table.list_table()
    except NftError as exc:
        raise CNIError(f"failed to read hostport rules: {exc.strerror}") from exc
    if listed is None:
        raise CNIError(f"missing hostport table {_table.FAMILY} {_table.TABLE}")
    for chain, count in _table.EXPECTED_RULES.items():
        if listed.rules.get(chain, 0) < count:
            raise CNIError(f'missing hostport rules in "{chain}" chain')
    present = {element.identity(): element for element in listed.elements}
    for wanted in _elements(request, config, result):
        found = present.get(wanted.identity())
        what = describe(wanted) if wanted.is_map else f"{wanted.set_name} element"
        if found is None:
            raise CNIError(f"{what} of {wanted.owner} is missing from nftables")
        if found.owner != wanted.owner:
            raise CNIError(f"{what} is held by {found.owner}, not {wanted.owner}")
        if wanted.is_map and not _table.same_value(found.value, wanted.value):
            raise CNIError(f"{what} maps to {_table.describe_value(found.value)}")


def delete(request: Request) -> None:
    try:
        if not parse_config(request).mappings:
            return  # as the reference: nothing was mapped for a pod without hostPorts
    except CNIError as exc:
        log(f"portmap DEL: removing by owner despite an unreadable config: {exc}")
    owner = _owner(request)
    try:
        removed = _table.remove_where(lambda tag: tag == owner)
    except NftError as exc:
        raise CNIError(f"error deleting nftables rules: {exc.strerror}") from exc
    forget_flows_to_pods(removed)


def gc(request: Request) -> None:
    """Drop the elements of this network's attachments that are not in the valid list."""
    keep = {
        _table.owner_tag(request.network_name, container_id, ifname)
        for container_id, ifname in valid_attachments(request.config)
    }
    prefix = _table.network_tag(request.network_name) + "/"
    try:
        removed = _table.remove_where(lambda tag: tag.startswith(prefix) and tag not in keep)
    except NftError as exc:
        raise CNIError(f"failed to clean up hostports: {exc.strerror}") from exc
    forget_flows_to_pods(removed)
    if removed:
        owners = sorted({element.owner for element in removed})
        log(f"portmap GC: removed the hostports of {', '.join(owners)}")
