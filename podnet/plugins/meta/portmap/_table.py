"""hostPorts in nftables: one table per node, one map element per hostPort.

    table inet podnet-portmap {
        map hostports4    { type inet_proto . inet_service : ipv4_addr . inet_service }
        map hostipports4  { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
        set hairpin4      { type ipv4_addr . ipv4_addr; flags interval }
                          pod . the sources masqueraded on their way to it (snat)
        set localhost4    { type ipv4_addr }               pods reached from 127/8 (snat)
        (the same with 6, but no localhost6: ::1 cannot leave the host)
        chain prerouting  { type nat hook prerouting priority dstnat
                            <conditionsV4> fib daddr type local jump hostports (and v6) }
        chain output      { type nat hook output priority -100; the same rules }
        chain hostports   { dnat ip to ip daddr . meta l4proto . th dport map @hostipports4
                            meta nfproto ipv4 dnat ip to meta l4proto . th dport map @hostports4
                            (and v6) }
        chain postrouting { type nat hook postrouting priority srcnat
                            ct status dnat ip daddr . ip saddr @hairpin4 masquerade
                            ct status dnat ip saddr 127.0.0.0/8 ip daddr @localhost4 masquerade
                            (and v6) }
    }

The reference's nftables backend writes a rule per hostPort into one chain and finds its
rules again by listing the chain; here a hostPort is a map element, added with `create`,
so a second pod asking for a hostPort that is taken fails in the kernel instead of
silently winning or losing. Which traffic is mapped is the reference's: to a local
address of the node (`fib daddr type local`), arriving (prerouting: other nodes, pods)
or sent by the node itself (output). Masquerade as the reference's iptables backend
(the one Debian ships and kube-flannel runs): mapped connections from the pod's own
subnet (its own hostPort, hairpin, and pods that would get the answer straight over the
bridge, bypassing the node's conntrack) and from 127.0.0.1; with masqAll, every mapped one.

Every element carries its owner ("<network>/<containerID>/<ifname>") as a comment, so DEL
finds the pod's elements without prevResult, and GC drops those of attachments the
runtime no longer has, for its own network only. The table is declared (text syntax,
since conditions are nftables expressions as the user wrote them) by the first pod a
process maps in a namespace, and again every _REDECLARE_SECONDS, when the conditions
change or when an element finds the table gone.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable, Iterable

from podnet._record import FrozenRecord
from podnet.netlink import (
    NftError,
    nft_apply,
    nft_apply_text,
    nft_get_element,
    nft_list,
)
from podnet.plugins._declared import DeclaredTables
from podnet.plugins.meta.portmap._config import PortMapping

TYPE_CHECKING = False  # not typing's own: importing typing costs a plugin run in-process ~3 ms
if TYPE_CHECKING:
    from typing import Any, Final

TABLE = "podnet-portmap"
FAMILY = "inet"
_REDECLARE_SECONDS = 30.0
_DELETE_ATTEMPTS = 3
_MAX_NETWORK_TAG = 48
_MAX_TAG = 120  # the kernel keeps up to 256 bytes of an element's comment
_ADDR = {4: ("ip", "ipv4_addr"), 6: ("ip6", "ipv6_addr")}
_NFPROTO = {4: "ipv4", 6: "ipv6"}
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _hashed(text: str) -> str:
    import hashlib  # rarely needed, and ~4 ms to import (OpenSSL)

    return "sha256:" + hashlib.sha256(text.encode(errors="surrogateescape")).hexdigest()


def network_tag(network: str) -> str:
    return network if len(network) <= _MAX_NETWORK_TAG else _hashed(network)[:23]


def owner_tag(network: str, container_id: str, ifname: str) -> str:
    """'<network>/<containerID>/<ifname>'; the attachment hashed when too long or when the
    interface name holds a character nft would not keep in a comment."""
    attachment = f"{container_id}/{ifname}"
    if len(attachment) > _MAX_TAG - _MAX_NETWORK_TAG - 1 or not _plain(attachment):
        attachment = _hashed(attachment)
    return f"{network_tag(network)}/{attachment}"


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class Element(FrozenRecord):
    """One element of a set or map; `key` and `value` as nft's JSON writes them."""

    __slots__ = ("set_name", "key", "value", "owner")

    def __init__(self, set_name: str, key: Any, value: Any = None, owner: str = "") -> None:
        self.set_name: Final = set_name
        self.key: Final = key
        self.value: Final = value  # maps only
        self.owner: Final = owner

    @property
    def is_map(self) -> bool:
        return self.set_name.startswith(("hostports", "hostipports"))

    def json_elem(self) -> Any:
        tagged = {"elem": {"val": self.key, "comment": self.owner}}
        return [tagged, self.value] if self.is_map else tagged

    def identity(self) -> tuple[str, str]:
        return (self.set_name, _canonical(self.key))

    def mapped(self) -> tuple[int, str, int, IPAddress] | None:
        """A map element as (IP version, protocol, hostPort, pod address); None for a set's."""
        if not self.is_map or self.value is None:
            return None
        *_, protocol, port = _canonical(self.key).split(" . ")
        pod_ip = _canonical(self.value).split(" . ")[0]
        return int(self.set_name[-1]), protocol, int(port), ipaddress.ip_address(pod_ip)


def _canonical(value: Any) -> str:
    """A key as one comparable string, however nft spelled it (addresses canonical)."""
    parts = value["concat"] if isinstance(value, dict) and "concat" in value else [value]
    out = []
    for part in parts:
        if isinstance(part, dict) and "prefix" in part:
            part = f"{part['prefix']['addr']}/{part['prefix']['len']}"
        text = str(part)
        try:
            # a prefix as long as the address is the address, as nft prints it
            network = ipaddress.ip_network(text, strict=False)
            text = str(network) if network.num_addresses > 1 else str(network.network_address)
        except ValueError:
            pass
        out.append(text)
    return " . ".join(out)


def _element_ref(element: Element, elem: Any) -> dict[str, Any]:
    return {"element": {"family": FAMILY, "table": TABLE, "name": element.set_name, "elem": [elem]}}


def _concat(*parts: Any) -> dict[str, Any]:
    return {"concat": list(parts)}


def pod_elements(
    owner: str,
    pod: IPInterface,
    mappings: Iterable[PortMapping],
    *,
    snat: bool,
    masq_all: bool,
) -> list[Element]:
    """What one pod address (with its prefix, from prevResult) and its hostPorts put into
    the table."""
    version = pod.version
    pod_ip = str(pod.ip)
    out = []
    for mapping in mappings:
        if not mapping.applies_to(version):
            continue
        value = _concat(pod_ip, mapping.container_port)
        if mapping.host_ip is None:
            key = _concat(mapping.protocol, mapping.host_port)
            out.append(Element(f"hostports{version}", key, value, owner))
        else:
            key = _concat(str(mapping.host_ip), mapping.protocol, mapping.host_port)
            out.append(Element(f"hostipports{version}", key, value, owner))
    if not out or not snat:
        return out
    sources = (
        pod.network if not masq_all else ipaddress.ip_network((0, 0) if version == 4 else "::/0")
    )
    prefix = {"prefix": {"addr": str(sources.network_address), "len": sources.prefixlen}}
    out.append(Element(f"hairpin{version}", _concat(pod_ip, prefix), owner=owner))
    if version == 4 and not masq_all:
        out.append(Element("localhost4", pod_ip, owner=owner))
    return out


def _declaration(conditions_v4: tuple[str, ...], conditions_v6: tuple[str, ...]) -> str:
    t = f"{FAMILY} {TABLE}"
    lines = [f"add table {t}"]
    for version, (_, addr) in _ADDR.items():
        lines += [
            f"add map {t} hostports{version} "
            f"{{ type inet_proto . inet_service : {addr} . inet_service; }}",
            f"add map {t} hostipports{version} "
            f"{{ type {addr} . inet_proto . inet_service : {addr} . inet_service; }}",
            f"add set {t} hairpin{version} {{ type {addr} . {addr}; flags interval; }}",
        ]
    lines.append(f"add set {t} localhost4 {{ type ipv4_addr; }}")
    hooks = {
        "prerouting": "type nat hook prerouting priority -100; policy accept;",
        "output": "type nat hook output priority -100; policy accept;",
        "postrouting": "type nat hook postrouting priority 100; policy accept;",
        "hostports": "",
    }
    for chain, spec in hooks.items():
        lines.append(f"add chain {t} {chain} {{ {spec} }}")
        lines.append(f"flush chain {t} {chain}")
    for version, conditions in ((4, conditions_v4), (6, conditions_v6)):
        for chain in ("prerouting", "output"):
            guard = " ".join((f"meta nfproto {_NFPROTO[version]}", *conditions))
            lines.append(f"add rule {t} {chain} {guard} fib daddr type local jump hostports")
    for version, (proto, _) in _ADDR.items():
        nfproto = f"meta nfproto {_NFPROTO[version]}"
        lines += [
            f"add rule {t} hostports {nfproto} dnat {proto} to "
            f"{proto} daddr . meta l4proto . th dport map @hostipports{version}",
            f"add rule {t} hostports {nfproto} dnat {proto} to "
            f"meta l4proto . th dport map @hostports{version}",
            f"add rule {t} postrouting ct status dnat "
            f"{proto} daddr . {proto} saddr @hairpin{version} masquerade",
        ]
    lines.append(
        f"add rule {t} postrouting ct status dnat ip saddr 127.0.0.0/8 ip daddr @localhost4 "
        "masquerade"
    )
    return "\n".join(lines) + "\n"


# rules the declaration puts in each chain, for CHECK
EXPECTED_RULES = {"prerouting": 2, "output": 2, "hostports": 4, "postrouting": 3}


class HostPortTaken(Exception):
    """A hostPort of the pod is mapped to another attachment on this node; `held` is the
    other attachment's element when it is not the same key (every address against one)."""

    def __init__(self, element: Element, holder: str, held: Element | None = None) -> None:
        super().__init__(f"{_canonical(element.key)} held by {holder}")
        self.element = element
        self.holder = holder
        self.held = held


def add_elements(
    declared: DeclaredTables,
    elements: list[Element],
    conditions_v4: tuple[str, ...] = (),
    conditions_v6: tuple[str, ...] = (),
) -> None:
    """Put a pod's elements in (one nft transaction when the table is there). A map key
    another owner holds raises HostPortTaken; the pod's own (an ADD repeated) is rewritten.
    The table is declared first unless `declared` says it was lately, with these
    conditions (other conditions replace the rules: one declaration per namespace)."""
    if not elements:
        return
    declaration = _declaration(conditions_v4, conditions_v6)
    key = declared.key(TABLE)
    if not declared.recent(key, _REDECLARE_SECONDS, declaration):
        nft_apply_text(declaration, what="set up the hostport table")
        declared.note(key, declaration)
    _refuse_overlaps(elements)
    replace: list[Element] = []
    for attempt in range(3):
        try:
            nft_apply(_add_commands(elements, replace), what="map hostPorts")
            return
        except NftError as exc:
            if exc.errno == errno.ENOENT and attempt == 0:
                # the table went away since we declared it: declare it again
                nft_apply_text(declaration, what="set up the hostport table")
                declared.note(key, declaration)
                continue
            if exc.errno != errno.EEXIST or attempt == 2:
                raise
        replace = _own_or_raise(elements)


def _refuse_overlaps(elements: list[Element]) -> None:
    """Kubernetes' rule for hostPorts on one node (CheckConflict, which the scheduler and
    kubelet's admission apply): one on every address (no hostIP) and one on a single
    address, same protocol and port, conflict; two different single addresses do not
    (the same key twice is the map's own EEXIST). Looked up before the transaction: the
    two kinds live in different maps, so the kernel cannot refuse the pair by itself."""
    specific_by_map: dict[str, list[Element]] = {}
    for element in elements:
        if not element.is_map:
            continue
        version = element.set_name[-1]
        protocol, port = _canonical(element.key).split(" . ")[-2:]
        if element.set_name.startswith("hostports"):  # every address: any single one
            name = f"hostipports{version}"
            if name not in specific_by_map:
                specific_by_map[name] = _map_elements(name)
            for held in specific_by_map[name]:
                held_protocol, held_port = _canonical(held.key).split(" . ")[-2:]
                if (held_protocol, held_port) == (protocol, port) and held.owner != element.owner:
                    raise HostPortTaken(element, held.owner, held)
        else:  # one address: the same port on every address
            held = Element(f"hostports{version}", _concat(protocol, int(port)))
            holder = owner_of(held)
            if holder is not None and holder != element.owner:
                raise HostPortTaken(element, holder, held)


def _map_elements(name: str) -> list[Element]:
    ref = {"map": {"family": FAMILY, "table": TABLE, "name": name}}
    items = nft_list(ref, what="list hostport elements")
    return [_read_elem(name, raw) for item in items for raw in item.get("map", {}).get("elem", [])]


def _add_commands(elements: list[Element], replace: list[Element]) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = [
        {"delete": _element_ref(element, element.key)} for element in replace
    ]
    for element in elements:
        if element.is_map:
            # create: a key that exists already fails the whole transaction (EEXIST)
            commands.append({"create": _element_ref(element, element.json_elem())})
        else:
            # add (so it exists), delete, add with our comment: an element an earlier
            # owner of this address left behind is taken over, as the masquerade does
            commands.append({"add": _element_ref(element, element.key)})
            commands.append({"delete": _element_ref(element, element.key)})
            commands.append({"add": _element_ref(element, element.json_elem())})
    return commands


def _own_or_raise(elements: list[Element]) -> list[Element]:
    """After EEXIST: the map keys that exist; ours are to be replaced, another's refuse."""
    existing = []
    for element in elements:
        if not element.is_map:
            continue
        holder = owner_of(element)
        if holder is None:
            continue
        if holder != element.owner:
            raise HostPortTaken(element, holder)
        existing.append(element)
    return existing


def owner_of(element: Element) -> str | None:
    """The comment on the element with `element`'s key; None when there is none."""
    text_key = _canonical(element.key)
    try:
        text = nft_get_element(
            FAMILY, TABLE, element.set_name, text_key, what="look up a hostport element"
        )
    except NftError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    _, found, rest = text.partition(' comment "')
    return rest.partition('"')[0] if found else ""


class Listed(FrozenRecord):
    __slots__ = ("elements", "rules")

    def __init__(self, elements: list[Element], rules: dict[str, int]) -> None:
        self.elements: Final = elements
        self.rules: Final = rules  # chain -> number of rules


def list_table() -> Listed | None:
    """Every element with its owner, and the rule count per chain; None without the table."""
    try:
        items = nft_list({"table": {"family": FAMILY, "name": TABLE}}, what="list hostports")
    except NftError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    elements: list[Element] = []
    rules: dict[str, int] = {}
    for item in items:
        if "chain" in item:
            rules.setdefault(item["chain"]["name"], 0)
        elif "rule" in item:
            chain = item["rule"]["chain"]
            rules[chain] = rules.get(chain, 0) + 1
        for kind in ("map", "set"):
            declared = item.get(kind)
            if declared:
                name = declared["name"]
                elements.extend(_read_elem(name, elem) for elem in declared.get("elem", []))
    return Listed(elements=elements, rules=rules)


def _read_elem(set_name: str, raw: Any) -> Element:
    value = None
    if isinstance(raw, list):  # a map element: [key, value]
        raw, value = raw
    if isinstance(raw, dict) and "elem" in raw:
        inner = raw["elem"]
        return Element(set_name, inner.get("val"), value, str(inner.get("comment", "")))
    return Element(set_name, raw, value, "")


def remove_where(unwanted: Callable[[str], bool]) -> list[Element]:
    """Drop every element whose owner `unwanted` picks; returns them."""
    for attempt in range(_DELETE_ATTEMPTS):
        listed = list_table()
        if listed is None:
            return []
        doomed = [e for e in listed.elements if unwanted(e.owner)]
        try:
            nft_apply(
                [{"delete": _element_ref(e, e.key)} for e in doomed],
                what="remove hostport elements",
            )
            return doomed
        except NftError as exc:
            # a concurrent DEL or GC removed one of them first: look again
            if exc.errno != errno.ENOENT or attempt == _DELETE_ATTEMPTS - 1:
                raise
    return []


def same_value(a: Any, b: Any) -> bool:
    return _canonical(a) == _canonical(b)


def describe_value(value: Any) -> str:
    """A map value (pod address . port) as "10.244.1.5:80" or "[fd00::5]:80"."""
    address, _, port = _canonical(value).partition(" . ")
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
