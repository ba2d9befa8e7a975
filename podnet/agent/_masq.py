"""Masquerade and forward rules, in one nftables table the agent owns (`ip podnet-agent`).

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

The whole table is rendered as one document and replaced in a single `nft -f -`
transaction, so there is never a moment with half the rules, and no rule ever piles up
twice. Every rule has a counter and a comment, so `masq_counters` can tell which fired.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Network
from typing import Any, TypeVar

from podnet.netlink import run_in_netns

TABLE = "podnet-agent"
KUBE_PROXY_MARK = 0x4000
MULTICAST = IPv4Network("224.0.0.0/4")

T = TypeVar("T")


class MasqueradeError(RuntimeError):
    """nft refused the rules; the message is nft's own first line."""


def render_ruleset(
    network: IPv4Network,
    pod_subnet: IPv4Network,
    *,
    masquerade: bool = True,
    forward: bool = True,
    fully_random: bool = True,
) -> str:
    """The table as an `nft -f` document (without the replace preamble)."""
    action = "masquerade fully-random" if fully_random else "masquerade"
    net, pod = network, pod_subnet
    lines = [f"table ip {TABLE} {{"]
    if masquerade:
        lines += [
            "\tchain postrouting {",
            "\t\ttype nat hook postrouting priority srcnat; policy accept;",
            f"\t\tmeta mark & {KUBE_PROXY_MARK:#x} == {KUBE_PROXY_MARK:#x} counter return"
            ' comment "kube-proxy marked"',
            f'\t\tip saddr {pod} ip daddr {net} counter return comment "pod to cluster"',
            f'\t\tip saddr {net} ip daddr {pod} counter return comment "cluster to pod"',
            f'\t\tip saddr != {net} ip daddr {pod} counter return comment "outside to pod"',
            f'\t\tip saddr {net} ip daddr != {MULTICAST} counter {action} comment "pod to outside"',
            f'\t\tip saddr != {net} ip daddr {net} counter {action} comment "host to pods"',
            "\t}",
        ]
    if forward:
        lines += [
            "\tchain forward {",
            "\t\ttype filter hook forward priority filter; policy accept;",
            f'\t\tip saddr {net} counter accept comment "forward from cluster"',
            f'\t\tip daddr {net} counter accept comment "forward to cluster"',
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _replace_document(ruleset: str) -> str:
    # Creating the table first makes the delete valid even when it does not exist yet;
    # nft applies the whole document as one transaction.
    return f"table ip {TABLE}\ndelete table ip {TABLE}\n{ruleset}"


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
    """Delete the agent's table; a missing one counts as deleted."""
    _nft(netns, ["-f", "-"], f"table ip {TABLE}\ndelete table ip {TABLE}\n")


def masq_counters(netns: str | None) -> dict[str, int]:
    """Packets counted per rule comment; {} when the table does not exist."""
    try:
        text = _nft(netns, ["-j", "list", "table", "ip", TABLE])
    except MasqueradeError:
        return {}
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
    if wanted <= set(masq_counters(netns)):
        return False
    apply_ruleset(netns, ruleset)
    return True
