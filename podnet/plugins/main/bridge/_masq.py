"""ipMasq with nftables: one table per network, keyed by sets of pod addresses.

    table inet podnet-masq-<network> {
        set pods4 { type ipv4_addr; elements = { 10.244.1.5 comment "<cid>/<ifname>", ... } }
        set subnets4 { type ipv4_addr; flags interval; auto-merge; elements = { 10.244.1.0/24 } }
        (pods6, subnets6 alike)
        chain postrouting {
            type nat hook postrouting priority srcnat; policy accept;
            ip saddr @pods4 ip daddr != @subnets4 ip daddr != 224.0.0.0/4 masquerade
            ip6 saddr @pods6 ip6 daddr != @subnets6 ip6 daddr != ff00::/8 masquerade
        }
    }

The reference bridge gives every pod its own iptables chain and execs iptables several
times per pod under a machine-wide lock; here a pod is one set element, added in the
same single `nft` transaction that (idempotently) declares the table. Each element
carries its owner ("<containerID>/<ifname>") as a comment, so DEL finds the pod's
elements even when the pod's interface and addresses are already gone, and GC can drop
the elements of attachments the runtime no longer knows.

Per pod, only the elements change: the table, sets, chain and rules are declared by the
first pod a host (podnet.cni.Host; podnet.plugins._declared in its state) sets up in a namespace,
and again every _REDECLARE_SECONDS (which also puts back rules someone flushed) or
whenever an element finds the table missing.
DEL looks up the pod's own addresses (prevResult) one key at a time; listing the table
(every element, as JSON) is for DEL without prevResult, CHECK and GC.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Iterable

from podnet import netlink  # nft_* load on first use: only pods with masquerade need them
from podnet.netlink import NftError
from podnet.plugins._declared import DeclaredTables

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FAMILY = "inet"
_CHAIN = "postrouting"
_SRCNAT_PRIORITY = 100
_PER_VERSION = {
    4: ("ip", "ipv4_addr", "224.0.0.0", 4),
    6: ("ip6", "ipv6_addr", "ff00::", 8),
}
_DELETE_ATTEMPTS = 3
_REDECLARE_SECONDS = 30.0


def table_name(network: str) -> str:
    return f"podnet-masq-{network}"


def _pods_set(version: int) -> str:
    return f"pods{version}"


def _subnets_set(version: int) -> str:
    return f"subnets{version}"


def _rule(table: str, version: int) -> dict[str, Any]:
    proto, _, multicast, mlen = _PER_VERSION[version]

    def field(name: str) -> dict[str, Any]:
        return {"payload": {"protocol": proto, "field": name}}

    return {
        "rule": {
            "family": _FAMILY,
            "table": table,
            "chain": _CHAIN,
            "expr": [
                {"match": {"op": "==", "left": field("saddr"), "right": f"@{_pods_set(version)}"}},
                {
                    "match": {
                        "op": "!=",
                        "left": field("daddr"),
                        "right": f"@{_subnets_set(version)}",
                    }
                },
                {
                    "match": {
                        "op": "!=",
                        "left": field("daddr"),
                        "right": {"prefix": {"addr": multicast, "len": mlen}},
                    }
                },
                {"masquerade": None},
            ],
        }
    }


def _declare(table: str) -> list[dict[str, Any]]:
    """Commands that create the table, sets and chain if missing and (re)write the two
    rules; sets and their elements are left alone."""
    base = {"family": _FAMILY, "table": table}
    commands: list[dict[str, Any]] = [{"add": {"table": {"family": _FAMILY, "name": table}}}]
    for version, (_, addr_type, _, _) in _PER_VERSION.items():
        commands.append({"add": {"set": {**base, "name": _pods_set(version), "type": addr_type}}})
        subnets = {
            **base,
            "name": _subnets_set(version),
            "type": addr_type,
            "flags": ["interval"],
            "auto-merge": True,
        }
        commands.append({"add": {"set": subnets}})
    chain = {
        **base,
        "name": _CHAIN,
        "type": "nat",
        "hook": "postrouting",
        "prio": _SRCNAT_PRIORITY,
        "policy": "accept",
    }
    commands.append({"add": {"chain": chain}})
    commands.append({"flush": {"chain": {**base, "name": _CHAIN}}})
    commands.extend({"add": _rule(table, version)} for version in _PER_VERSION)
    return commands


def _element(table: str, set_name: str, elem: list[Any]) -> dict[str, Any]:
    return {"element": {"family": _FAMILY, "table": table, "name": set_name, "elem": elem}}


def add_pod(
    declared: DeclaredTables, network: str, owner: str, addresses: list[IPInterface]
) -> None:
    """Masquerade traffic of `addresses` leaving their subnet (one nft transaction); the
    table is declared too unless `declared` says it was lately."""
    table = table_name(network)
    key = declared.key(table)
    what = f"set up masquerade for {owner}"
    if declared.recent(key, _REDECLARE_SECONDS):
        try:
            netlink.nft_apply(_pod_elements(table, owner, addresses), what=what)
            return
        except NftError as exc:
            if exc.errno != errno.ENOENT:
                raise
            declared.forget(key)  # the table went away: declare it again
    netlink.nft_apply(_declare(table) + _pod_elements(table, owner, addresses), what=what)
    declared.note(key)


def _pod_elements(table: str, owner: str, addresses: list[IPInterface]) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = []
    for address in addresses:
        ip = str(address.ip)
        subnet = {
            "prefix": {
                "addr": str(address.network.network_address),
                "len": address.network.prefixlen,
            }
        }
        commands.append({"add": _element(table, _subnets_set(address.version), [subnet])})
        # add (so it exists), delete, add with our comment: an element left by an earlier
        # owner of this IP is taken over instead of keeping the stale owner.
        pods = _pods_set(address.version)
        commands.append({"add": _element(table, pods, [ip])})
        commands.append({"delete": _element(table, pods, [ip])})
        commands.append({"add": _element(table, pods, [{"elem": {"val": ip, "comment": owner}}])})
    return commands


def _elements(network: str) -> list[tuple[int, IPAddress, str]]:
    """(version, pod address, owner) of every pod element; empty without the table."""
    try:
        items = netlink.nft_list(
            {"table": {"family": _FAMILY, "name": table_name(network)}},
            what="list masquerade table",
        )
    except NftError as exc:
        if exc.errno == errno.ENOENT:
            return []
        raise
    out = []
    for item in items:
        declared = item.get("set")
        if not declared or declared.get("name") not in ("pods4", "pods6"):
            continue
        version = 4 if declared["name"] == "pods4" else 6
        for elem in declared.get("elem", []):
            if isinstance(elem, dict):
                inner = elem.get("elem", {})
                value, comment = inner.get("val"), inner.get("comment", "")
            else:
                value, comment = elem, ""
            out.append((version, ipaddress.ip_address(value), str(comment)))
    return out


def pod_addresses(network: str, owner: str) -> set[IPAddress]:
    return {ip for _, ip, tag in _elements(network) if tag == owner}


def _remove_where(network: str, unwanted: Callable[[str], bool]) -> list[IPAddress]:
    table = table_name(network)
    for attempt in range(_DELETE_ATTEMPTS):
        doomed = [(v, ip) for v, ip, tag in _elements(network) if unwanted(tag)]
        commands = [{"delete": _element(table, _pods_set(v), [str(ip)])} for v, ip in doomed]
        try:
            netlink.nft_apply(commands, what="remove masquerade elements")
            return [ip for _, ip in doomed]
        except NftError as exc:
            # a concurrent DEL or GC removed one of them first: look again
            if exc.errno != errno.ENOENT or attempt == _DELETE_ATTEMPTS - 1:
                raise
    return []


def remove_pod(
    network: str, owner: str, addresses: Iterable[IPAddress] | None = None
) -> list[IPAddress]:
    """Drop the elements `owner` holds; returns the addresses removed. With `addresses`
    (the pod's, from prevResult) only those keys are looked up, not the whole table;
    an element there that another owner holds now is left alone."""
    if addresses is None:
        return _remove_where(network, lambda tag: tag == owner)
    table = table_name(network)
    doomed = [ip for ip in addresses if _owner_of(table, ip) == owner]
    commands = [{"delete": _element(table, _pods_set(ip.version), [str(ip)])} for ip in doomed]
    netlink.nft_apply(commands, what=f"remove masquerade of {owner}")
    return doomed


def _owner_of(table: str, ip: IPAddress) -> str | None:
    """The comment of the element for `ip`; None when there is none."""
    try:
        text = netlink.nft_get_element(
            _FAMILY, table, _pods_set(ip.version), str(ip), what="look up masquerade element"
        )
    except NftError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    _, found, rest = text.partition(' comment "')
    return rest.partition('"')[0] if found else ""


def remove_all_but(network: str, keep: set[str]) -> list[IPAddress]:
    """GC: drop every element whose owner is not in `keep`."""
    return _remove_where(network, lambda tag: tag not in keep)
