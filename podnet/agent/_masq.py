"""Masquerade and forward rules, in nftables tables the agent owns (`ip podnet-agent`, and
`ip6 podnet-agent` with the same rules for the IPv6 network when IPv6 is enabled, as
flannel's ip6tables rules; their comments end in " v6").

The rules mean what flannel's (trafficmngr/iptables, the FLANNEL-POSTRTG and FLANNEL-FWD
chains) mean:
    - traffic marked by kube-proxy (0x4000) is left alone: it is already masqueraded;
    - pod <-> pod traffic anywhere in the cluster network keeps its source address;
    - traffic from outside the cluster to a local pod keeps its source;
    - pod traffic leaving the cluster network is masqueraded (not multicast);
    - traffic from a non-pod address (the node itself) towards remote pods is masqueraded;
    - forwarding to and from the cluster network is accepted (a host firewall's default
      drop must not cut pods off).
(flannel's experimental nftables manager writes the third rule as `saddr != podCIDR daddr
Network`; podnet follows its default iptables manager, `! -s Network -d podCIDR`.)

The tables are rendered as one document and replaced in a single `nft -f -`
transaction, so there is never a moment with half the rules, and no rule ever piles up
twice. Every rule has a counter and a comment, so `masq_counters` can tell which fired.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from typing import Any, TypeVar

from podnet.netlink import run_in_netns

TABLE = "podnet-agent"
KUBE_PROXY_MARK = 0x4000
MULTICAST = IPv4Network("224.0.0.0/4")
MULTICAST_V6 = IPv6Network("ff00::/8")
FAMILIES = ("ip", "ip6")  # nftables' names of the tables' families

T = TypeVar("T")


class MasqueradeError(RuntimeError):
    """nft refused the rules; the message is nft's own first line."""


def render_ruleset(
    network: IPv4Network | None,
    pod_subnet: IPv4Network | None,
    *,
    masquerade: bool = True,
    forward: bool = True,
    fully_random: bool = True,
    ipv6_network: IPv6Network | None = None,
    ipv6_subnet: IPv6Network | None = None,
) -> str:
    """The tables as an `nft -f` document (without the replace preamble): `ip` for the
    IPv4 network and subnet, `ip6` for the IPv6 ones; a family left None has no table."""
    options = (masquerade, forward, fully_random)
    text = ""
    if network is not None and pod_subnet is not None:
        text += _table("ip", network, pod_subnet, MULTICAST, "", *options)
    if ipv6_network is not None and ipv6_subnet is not None:
        text += _table("ip6", ipv6_network, ipv6_subnet, MULTICAST_V6, " v6", *options)
    return text


def _table(
    family: str,
    net: IPv4Network | IPv6Network,
    pod: IPv4Network | IPv6Network,
    multicast: IPv4Network | IPv6Network,
    suffix: str,
    masquerade: bool,
    forward: bool,
    fully_random: bool,
) -> str:
    action = "masquerade fully-random" if fully_random else "masquerade"
    lines = [f"table {family} {TABLE} {{"]
    if masquerade:
        lines += [
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f"\t\tmeta mark & {KUBE_PROXY_MARK:#x} == {KUBE_PROXY_MARK:#x} counter return"
            f' comment "kube-proxy marked{suffix}"',
            f"\t\t{family} saddr {pod} {family} daddr {net} counter return"
            f' comment "pod to cluster{suffix}"',
            f"\t\t{family} saddr {net} {family} daddr {pod} counter return"
            f' comment "cluster to pod{suffix}"',
            f"\t\t{family} saddr != {net} {family} daddr {pod} counter return"
            f' comment "outside to pod{suffix}"',
            f"\t\t{family} saddr {net} {family} daddr != {multicast} counter {action}"
            f' comment "pod to outside{suffix}"',
            f"\t\t{family} saddr != {net} {family} daddr {net} counter {action}"
            f' comment "host to pods{suffix}"',
            "\t}",
        ]
    if forward:
        lines += [
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            f'\t\t{family} saddr {net} counter accept comment "forward from cluster{suffix}"',
            f'\t\t{family} daddr {net} counter accept comment "forward to cluster{suffix}"',
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _delete_tables() -> str:
    # Creating a table first makes its delete valid even when it does not exist yet; both
    # families go, so a family the config no longer enables leaves no rules behind.
    return "".join(f"table {f} {TABLE}\ndelete table {f} {TABLE}\n" for f in FAMILIES)


def _replace_document(ruleset: str) -> str:
    # nft applies the whole document as one transaction.
    return _delete_tables() + ruleset


def _in(netns: str | None, func: Callable[[], T]) -> T:
    return func() if netns is None else run_in_netns(netns, func)


def _nft(netns: str | None, args: list[str], stdin: str = "") -> str:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nft", *args], input=stdin, capture_output=True, text=True, check=False
        )

    done = _in(netns, run)
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["(no message)"])[0]
        raise MasqueradeError(f"nft {' '.join(args)}: {first}")
    return done.stdout


def apply_ruleset(netns: str | None, ruleset: str) -> None:
    """Replace the agent's table with `ruleset`, atomically, in the namespace at `netns`
    (None: the caller's own)."""
    _nft(netns, ["-f", "-"], _replace_document(ruleset))


def remove_ruleset(netns: str | None) -> None:
    """Delete the agent's tables; a missing one counts as deleted."""
    _nft(netns, ["-f", "-"], _delete_tables())


def masq_counters(netns: str | None, families: tuple[str, ...] = FAMILIES) -> dict[str, int]:
    """Packets counted per rule comment in the tables of `families`; a table that does not
    exist counts nothing."""
    counts: dict[str, int] = {}
    for family in families:
        try:
            text = _nft(netns, ["-j", "list", "table", family, TABLE])
        except MasqueradeError:
            continue
        counts.update(_counts(text))
    return counts


def _counts(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in json.loads(text).get("nftables", []):
        rule: dict[str, Any] | None = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expr in rule.get("expr", []):
            if "counter" in expr:
                counts[rule["comment"]] = int(expr["counter"]["packets"])
    return counts


def ensure_ruleset(netns: str | None, ruleset: str) -> bool:
    """Apply `ruleset` again when a rule of it is missing from the kernel (someone flushed
    a chain or deleted the table), as flannel re-checks its iptables rules; returns True
    when it had to. Rules are recognised by their comments, so a table left whole keeps
    its counters."""
    wanted = set(re.findall(r'comment "([^"]+)"', ruleset))
    families = tuple(f for f in FAMILIES if f"table {f} {TABLE} " in ruleset)
    if wanted <= set(masq_counters(netns, families)):
        return False
    apply_ruleset(netns, ruleset)
    return True
